// The CPUs of this machine, for command lines: no module is loaded to learn them.
export { onlineCpus } from '../os/cpus.js';
