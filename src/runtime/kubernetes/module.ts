/**
 * RTMANAGER_RUNTIME=kubernetes: one Pod per game, with a Service and a claim.
 * Its code and @kubernetes/client-node (~70 MB of RSS) load only when chosen.
 */
import { ConfigError } from "../../config.js";
import { toRtmError } from "../../model/errors.js";
import type { RuntimeModule } from "../module.js";

export const podModule: RuntimeModule = {
  name: "kubernetes",
  settings: [
    "RTMANAGER_POD_NAMESPACE",
    "RTMANAGER_POD_CLIENT_NAMESPACES",
    "RTMANAGER_POD_CLUSTER_DOMAIN",
    "RTMANAGER_POD_STORAGE_CLASS",
    "RTMANAGER_POD_STORAGE_SIZE",
    "RTMANAGER_POD_TEMPLATE_FILE",
    "RTMANAGER_POD_START_TIMEOUT",
    "RTMANAGER_POD_CLAIM_RETENTION",
  ],
  // Informer-style watches with bookmarks re-list themselves past their own silence limit (src/kube/reflector.ts).
  events: { label: "pods", liveness: "self-kept" },
  network: (config) => config.gamePodNamespace,
  // RTMANAGER_POD_CLAIM_RETENTION: released claims are deleted by the leader.
  stateRetentionMs: (config) => config.podClaimRetentionMs,
  async create({ config, logger, gameRuntimes, onCall }) {
    const [{ kubeClient }, { KubernetesPodRuntime }, { loadPodTemplate }] = await Promise.all([
      import("../../kube/client.js"),
      import("./podRuntime.js"),
      import("./podTemplate.js"),
    ]);
    let template;
    try {
      template = loadPodTemplate(config.podTemplateFile);
    } catch (err) {
      throw new ConfigError(`invalid configuration: ${toRtmError(err).message}`);
    }
    return new KubernetesPodRuntime({
      // The same client setup as the GameRuntime source: every request aborted at RTMANAGER_KUBE_REQUEST_TIMEOUT.
      kubeConfig: kubeClient(config.kubeRequestTimeoutMs),
      instance: config.instanceId,
      namespace: config.gamePodNamespace,
      listNamespace: gameRuntimes ? gameRuntimes.watchNamespace : config.gamePodNamespace,
      placement: gameRuntimes?.placement(config.gamePodNamespace),
      pod: {
        imagePullPolicy: config.imagePullPolicy,
        terminationGraceSeconds: Math.ceil(config.stopTimeoutMs / 1000),
        template,
        clients: { namespaces: config.podClientNamespaces, clusterDomain: config.podClusterDomain },
        readiness: {
          periodSeconds: Math.max(1, Math.round(config.probeIntervalMs / 1000)),
          timeoutSeconds: Math.max(1, Math.round(config.probeTimeoutMs / 1000)),
          failureThreshold: config.probeFailureThreshold,
        },
      },
      claim: { storageClass: config.podStorageClass, size: config.podStorageSize, retentionMs: config.podClaimRetentionMs },
      logger: logger.child({ component: "pods" }),
      startTimeoutMs: config.podStartTimeoutMs,
      silenceLimitMs: config.watchSilenceLimitMs,
      onCall,
    });
  },
  async ready(runtime, config) {
    const namespace = config.gamePodNamespace;
    try {
      const problem = await runtime.setupProblem();
      return problem === null ? null : { reason: problem };
    } catch (err) {
      return {
        reason: `Pods in namespace ${namespace} (RTMANAGER_POD_NAMESPACE) cannot be listed`,
        detail: toRtmError(err).message,
        fix: "check that the namespace exists and that rtmanager's Role grants list on pods there",
      };
    }
  },
};
