// The exit tests again, on the path for kernels without pidfd_open (before
// 5.3): with TSPMC_NO_PIDFD=1 a target is named by its pid and start time
// (os/process-handle.ts) and the exit reaper looks on its timer rather than
// in poll(2). Every test of proc-exits runs here; those about the pidfd
// itself expect what a kernel without one gives.
process.env.TSPMC_NO_PIDFD = '1';
await import('./proc-exits.test.js');
