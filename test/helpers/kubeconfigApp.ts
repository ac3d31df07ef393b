/**
 * createApp as production runs it in Kubernetes mode: client-node reads
 * $KUBECONFIG while the app is built. Tests point it at their test API server
 * for that moment only, so files sharing a worker never see each other's.
 */
import type { Logger } from "../../src/log.js";
import { createApp, type App, type AppOverrides } from "../../src/app.js";
import type { Config } from "../../src/config.js";

export async function createAppWithKubeconfig(kubeconfigFile: string, config: Config, logger: Logger, overrides?: AppOverrides): Promise<App> {
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = kubeconfigFile;
  try {
    return await createApp(config, logger, overrides);
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
}
