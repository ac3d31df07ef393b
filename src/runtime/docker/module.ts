/** RTMANAGER_RUNTIME=docker: engines as containers on one Docker engine. */
import type { RuntimeModule } from "../module.js";
import { DockerRuntime } from "./dockerRuntime.js";

export const dockerModule: RuntimeModule = {
  name: "docker",
  settings: [
    "RTMANAGER_DOCKER_NETWORK",
    "RTMANAGER_ENGINE_PUBLISH_HOST",
    "RTMANAGER_ENGINE_CAP_ADD",
    "RTMANAGER_ENGINE_LOG_MAX_SIZE",
    "RTMANAGER_ENGINE_LOG_MAX_FILES",
    "RTMANAGER_ENGINE_READ_ONLY_ROOTFS",
    "RTMANAGER_ENGINE_USER",
    "RTMANAGER_ENGINE_FS_GROUP",
  ],
  // A quiet engine and a half-open event connection look the same: past the silence limit the stream is replaced.
  events: { label: "docker", liveness: "replace-when-silent" },
  network: (config) => config.dockerNetwork,
  create: ({ config, logger, onCall }) =>
    Promise.resolve(
      new DockerRuntime({
        instance: config.instanceId,
        network: config.dockerNetwork,
        publishHost: config.enginePublishHost ?? null,
        hardening: config.engineHardening,
        logger: logger.child({ component: "docker" }),
        onCall,
      }),
    ),
  async ready(runtime, config) {
    const network = config.dockerNetwork;
    const problem = await runtime.setupProblem();
    return problem === null ? null : { reason: problem, fix: `create it with: docker network create ${network}` };
  },
};
