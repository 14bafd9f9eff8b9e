/** The entry point of a worker process (node:cluster runs this file; see workers/primary.ts). */
import { runWorker } from "./worker.js";

runWorker();
