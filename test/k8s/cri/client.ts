/**
 * A gRPC client for the CRI subset in api.proto (runtime.v1), as the kubelet's
 * remote runtime service talks to containerd over its unix socket. Field names
 * are the proto's in lowerCamelCase (proto-loader's default); int64 fields
 * come back as numbers and enums as their names.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), "api.proto");

export type ContainerStateName = "CONTAINER_CREATED" | "CONTAINER_RUNNING" | "CONTAINER_EXITED" | "CONTAINER_UNKNOWN";

export interface ImageSpec {
  image: string;
}
export interface KeyValue {
  key: string;
  value: Buffer;
}
export interface Mount {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
}
export interface SecurityProfile {
  profileType: "RuntimeDefault" | "Unconfined" | "Localhost";
  localhostRef?: string;
}
export interface LinuxContainerResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
  oomScoreAdj?: number;
}
export interface LinuxContainerSecurityContext {
  capabilities?: { addCapabilities?: string[]; dropCapabilities?: string[] };
  privileged?: boolean;
  runAsUser?: { value: number };
  runAsGroup?: { value: number };
  readonlyRootfs?: boolean;
  supplementalGroups?: number[];
  noNewPrivs?: boolean;
  seccomp?: SecurityProfile;
}
export interface LinuxContainerConfig {
  resources?: LinuxContainerResources;
  securityContext?: LinuxContainerSecurityContext;
}
export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt: number };
  hostname: string;
  logDirectory: string;
  dnsConfig?: { servers: string[]; searches: string[]; options: string[] };
  labels: Record<string, string>;
  annotations: Record<string, string>;
  linux: {
    cgroupParent?: string;
    securityContext?: { runAsUser?: { value: number }; runAsGroup?: { value: number }; supplementalGroups?: number[]; seccomp?: SecurityProfile };
  };
}
export interface ContainerConfig {
  metadata: { name: string; attempt: number };
  image: ImageSpec;
  command: string[];
  args: string[];
  envs: KeyValue[];
  mounts: Mount[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  logPath: string;
  linux: LinuxContainerConfig;
}
export interface CriContainerStatus {
  id: string;
  metadata: { name: string; attempt: number };
  state: ContainerStateName;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  image: ImageSpec | null;
  imageRef: string;
  reason: string;
  message: string;
  labels: Record<string, string>;
  logPath: string;
}
export interface CriContainer {
  id: string;
  podSandboxId: string;
  state: ContainerStateName;
  labels: Record<string, string>;
}
export interface CriPodSandbox {
  id: string;
  state: "SANDBOX_READY" | "SANDBOX_NOTREADY";
  labels: Record<string, string>;
}
export interface CriImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
}

/** The calls the test kubelet makes, each one unary RPC. */
export interface CriClient {
  version(): Promise<{ runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;
  runPodSandbox(config: PodSandboxConfig): Promise<string>;
  stopPodSandbox(id: string): Promise<void>;
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<{ id: string; state: string; network: { ip: string } | null }>;
  listPodSandbox(labels: Record<string, string>): Promise<CriPodSandbox[]>;
  createContainer(sandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  containerStatus(id: string, verbose?: boolean): Promise<{ status: CriContainerStatus; info: Record<string, string> }>;
  listContainers(labels: Record<string, string>): Promise<CriContainer[]>;
  execSync(id: string, cmd: string[], timeoutSeconds: number): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }>;
  imageStatus(ref: string): Promise<CriImage | null>;
  pullImage(ref: string, sandboxConfig?: PodSandboxConfig): Promise<string>;
  close(): void;
}

/** A gRPC status code, kept so callers can tell NotFound from a real failure. */
export class CriError extends Error {
  constructor(
    readonly code: grpc.status,
    readonly rpc: string,
    message: string,
  ) {
    super(`CRI ${rpc}: ${message}`);
  }
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

let definition: protoLoader.PackageDefinition | null = null;

export function criClient(socket: string, callTimeoutMs = 120_000): CriClient {
  definition ??= protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const address = `unix://${socket}`;
  const creds = grpc.credentials.createInsecure();
  // Containerd answers large image lists; the kubelet's own limit is 16 MiB.
  const options = { "grpc.max_receive_message_length": 16 << 20 };
  const runtime = new pkg.runtime.v1.RuntimeService!(address, creds, options);
  const images = new pkg.runtime.v1.ImageService!(address, creds, options);

  const call = <T>(client: grpc.Client, rpc: string, req: object): Promise<T> =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, Unary>)[rpc]!.bind(client);
      fn(req, new grpc.Metadata(), { deadline: Date.now() + callTimeoutMs }, (err, res) => {
        if (err) reject(new CriError(err.code, rpc, err.details || err.message));
        else resolve(res as T);
      });
    });
  const rt = <T>(rpc: string, req: object) => call<T>(runtime, rpc, req);

  return {
    version: () => rt("Version", { version: "v1" }),
    runPodSandbox: async (config) => (await rt<{ podSandboxId: string }>("RunPodSandbox", { config })).podSandboxId,
    stopPodSandbox: async (id) => void (await rt("StopPodSandbox", { podSandboxId: id })),
    removePodSandbox: async (id) => void (await rt("RemovePodSandbox", { podSandboxId: id })),
    podSandboxStatus: async (id) => (await rt<{ status: { id: string; state: string; network: { ip: string } | null } }>("PodSandboxStatus", { podSandboxId: id })).status,
    listPodSandbox: async (labels) => (await rt<{ items: CriPodSandbox[] }>("ListPodSandbox", { filter: { labelSelector: labels } })).items,
    createContainer: async (podSandboxId, config, sandboxConfig) => (await rt<{ containerId: string }>("CreateContainer", { podSandboxId, config, sandboxConfig })).containerId,
    startContainer: async (id) => void (await rt("StartContainer", { containerId: id })),
    stopContainer: async (id, timeout) => void (await rt("StopContainer", { containerId: id, timeout })),
    removeContainer: async (id) => void (await rt("RemoveContainer", { containerId: id })),
    containerStatus: (id, verbose = false) => rt("ContainerStatus", { containerId: id, verbose }),
    listContainers: async (labels) => (await rt<{ containers: CriContainer[] }>("ListContainers", { filter: { labelSelector: labels } })).containers,
    execSync: (id, cmd, timeout) => rt("ExecSync", { containerId: id, cmd, timeout }),
    imageStatus: async (ref) => (await call<{ image: CriImage | null }>(images, "ImageStatus", { image: { image: ref } })).image,
    pullImage: async (ref, sandboxConfig) => (await call<{ imageRef: string }>(images, "PullImage", { image: { image: ref }, ...(sandboxConfig ? { sandboxConfig } : {}) })).imageRef,
    close: () => {
      runtime.close();
      images.close();
    },
  };
}
