// `segvol-webgpu/queue`: segmentation jobs on Redis with BullMQ (what
// `segvol worker`, `submit` and `status` run): the job format, submitting
// and following jobs, the queue's counts, and a worker loop around a
// segmenting function of your own (docs/deployment.md).
export { parseJob, JobInputError, JOB_VERSION, type SegmentJob, type JobInput, type JobProgress } from "../queue/job.js";
export { submitJobs, followJobs, JOB_ATTEMPTS, type JobEvent } from "../queue/submit.js";
export { queueStatus, formatStatus, type QueueStatus, type FailedJob } from "../queue/status.js";
export { startQueueWorker, type SegmentProcessor, type QueueWorkerOptions, type QueueWorker } from "../queue/worker.js";
export { DEFAULT_QUEUE, connectRedis } from "../queue/connection.js";
