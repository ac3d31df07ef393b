/**
 * What the test kubelet asks of a container runtime: the slice of the
 * kubelet's kubecontainer.Runtime that its pod worker uses. Two adapters:
 * CriRuntime (criRuntime.ts, containerd's CRI over gRPC, as a real kubelet
 * runs pods) and DockerRuntime (runtime.ts, Docker containers with ports
 * published on 127.0.0.1). The kubelet's own logic (sync loop, restart
 * policy and back-off, probes, phase and conditions) stays in podWorker.ts
 * whichever adapter runs the containers.
 */
import type { Readable } from "node:stream";
import type { ContainerSpec, PodSpec, Terminated } from "./types.js";

export interface RunSpec {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env: string[];
  ports: number[];
  binds: string[];
  labels: Record<string, string>;
  /** The pod and container this run is for; the CRI adapter builds its sandbox and LinuxContainerConfig from them. */
  pod?: { name: string; namespace: string; uid: string; spec: PodSpec };
  container?: ContainerSpec;
  /** Restarts of this container so far (the CRI's ContainerMetadata.attempt). */
  attempt?: number;
}

export interface Started {
  id: string;
  /** `<runtime>://<id>`, the containerStatus's containerID. */
  containerID: string;
  /** The image as the runtime reports it (containerd: the image's first repo tag), and its imageID (a repo digest, else the image id). */
  reportedImage: string;
  imageId: string;
  startedAt: string;
  hostPorts: Record<number, number>;
  /** The pod's IP: its sandbox's on the CRI bridge, 127.0.0.1 for Docker-published ports. */
  podIP: string;
  pid: number;
}

/** Where a probe (or a test) reaches a container port of a started container. */
export function endpointOf(started: Pick<Started, "hostPorts" | "podIP">, containerPort: number): { host: string; port: number } | undefined {
  const published = started.hostPorts[containerPort];
  if (published !== undefined) return { host: "127.0.0.1", port: published };
  return started.podIP && started.podIP !== "127.0.0.1" ? { host: started.podIP, port: containerPort } : undefined;
}

/** A container that was created but could not start (a bad entrypoint): the kubelet's StartError. */
export class StartError extends Error {
  constructor(
    readonly containerId: string,
    message: string,
    /** The runtime's termination record for it, when the runtime keeps one (containerd: exit 128, StartError). */
    readonly terminated?: Terminated,
  ) {
    super(message);
  }
}

/** A pull the runtime attempted and failed (ErrImagePull). */
export class PullError extends Error {}

export interface LogRequest {
  follow: boolean;
  tailLines?: number;
  timestamps: boolean;
}

export interface ContainerRuntime {
  /** nodeInfo.containerRuntimeVersion, e.g. `containerd://1.6.20`. */
  readonly version: string;
  /** The image's id, or null when it is not present locally. */
  imageId(ref: string): Promise<string | null>;
  /** Pulls `ref`; throws PullError when the pull fails. */
  pullImage(ref: string): Promise<string>;
  run(spec: RunSpec): Promise<Started>;
  /** Resolves when the container exits, with its termination as the kubelet reports it. */
  waitExit(id: string): Promise<Terminated>;
  /** SIGTERM, then SIGKILL after the grace period (0: SIGKILL at once). */
  stop(id: string, graceSeconds: number): Promise<void>;
  remove(id: string): Promise<void>;
  /** Every trace of one pod (its sandbox) once all its containers are stopped. */
  releasePod(podUid: string): Promise<void>;
  /** Removes everything the test cluster with this run id created. */
  removeAll(runLabel: string, runId: string): Promise<void>;
  logs(id: string, options: LogRequest): Promise<Readable>;
  close(): Promise<void>;
}

/** The runtime's own id in a containerID URI (`containerd://abc` → `abc`). */
export const idOfContainerID = (containerID: string): string => containerID.slice(containerID.indexOf("://") + 3);
