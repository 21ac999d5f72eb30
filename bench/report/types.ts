import type { machine } from '../lib/coordinator.ts';
import type { bigFile } from '../scenarios/big-file.ts';
import type { chunkLatency } from '../scenarios/chunk-latency.ts';
import type { concurrentUploads } from '../scenarios/concurrent-uploads.ts';
import type { controlPlane, saturationRamp } from '../scenarios/control-plane.ts';
import type { manyFiles } from '../scenarios/many-files.ts';
import type { ThroughputResults } from '../scenarios/throughput.ts';
import type { workerScaling } from '../scenarios/workers.ts';

export interface Target {
  target: string;
  value: number | null;
  met: boolean | null;
  note?: string;
}

/** bench/results/<date>.json and latest.json. */
export interface Results {
  benchmark: 'conveyor';
  mode: 'quick' | 'full';
  command: string;
  startedAt: string;
  seconds: number;
  machine: ReturnType<typeof machine>;
  store: string;
  stack: { s3: 'reused' | 'started'; coordinator: string; database: string };
  /** The environment of the coordinator the figures (except "concurrent uploads") used. */
  coordinatorSettings: Record<string, string>;
  partSizeMiB: number;
  /** Seconds each scenario took, and the error of each that failed. */
  scenarioSeconds: Record<string, number>;
  errors: Record<string, string>;
  throughput?: ThroughputResults;
  manyFiles?: Awaited<ReturnType<typeof manyFiles>>;
  chunkLatency?: Awaited<ReturnType<typeof chunkLatency>>;
  concurrentUploads?: Awaited<ReturnType<typeof concurrentUploads>>;
  saturation?: Awaited<ReturnType<typeof saturationRamp>>;
  controlPlane?: Awaited<ReturnType<typeof controlPlane>>;
  workerScaling?: Awaited<ReturnType<typeof workerScaling>>;
  bigFile?: Awaited<ReturnType<typeof bigFile>>;
  /** bench/sdk-workers.ts (issue 8), when present. */
  sdkWorkers?: unknown;
  targets: Record<string, Target>;
}
