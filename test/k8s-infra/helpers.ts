/** Shared by the test-kubelet tests: a pod manifest of the test engine and polling. */
import { testDocker } from "../helpers/docker.js";
import { qualified } from "../k8s/kubelet/runtime.js";
import type { V1Container, V1Pod } from "@kubernetes/client-node";

export interface EnginePodOptions {
  env?: Record<string, string>;
  restartPolicy?: "Always" | "OnFailure" | "Never";
  liveness?: boolean;
  labels?: Record<string, string>;
  claim?: string;
  grace?: number;
}

export function enginePod(name: string, image: string, o: EnginePodOptions = {}): V1Pod {
  const probe = { httpGet: { path: "/healthz", port: 8080 }, periodSeconds: 1, failureThreshold: 2, successThreshold: 1, timeoutSeconds: 1 };
  const container: V1Container = {
    name: "engine",
    image,
    ports: [{ containerPort: 8080, name: "http" }],
    env: Object.entries({ ...(o.claim ? { GAME_STATE_PATH: "/state" } : {}), ...(o.env ?? {}) }).map(([k, v]) => ({ name: k, value: v })),
    readinessProbe: probe,
    ...(o.liveness ? { livenessProbe: { ...probe, httpGet: { path: "/healthz", port: "http" } } } : {}),
    ...(o.claim ? { volumeMounts: [{ name: "state", mountPath: "/state" }] } : {}),
  };
  return {
    metadata: { name, labels: { app: "engine", ...(o.labels ?? {}) } },
    spec: {
      restartPolicy: o.restartPolicy ?? "Always",
      terminationGracePeriodSeconds: o.grace ?? 5,
      containers: [container],
      ...(o.claim ? { volumes: [{ name: "state", persistentVolumeClaim: { claimName: o.claim } }] } : {}),
    },
  };
}

/** Polls `probe` until it returns a value (not undefined/false) or the time is up; the last error is in the failure. */
export async function until<T>(what: string, probe: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The image name a container status carries, as containerd's CRI reports it
 * (ContainerStatus: the image's first repo tag, registry-qualified), for an
 * image with every tag it has now (other tests may have added some).
 */
export async function reportedImage(ref: string): Promise<string> {
  const tags = ((await testDocker().getImage(ref).inspect()).RepoTags ?? []).filter((t) => t !== "<none>:<none>").sort();
  return qualified(tags[0] ?? ref);
}
