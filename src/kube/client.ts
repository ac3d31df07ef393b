/**
 * The one Kubernetes client setup: a kubeconfig (the default chain, or one
 * given) whose every API request is aborted at RTMANAGER_KUBE_REQUEST_TIMEOUT.
 * The GameRuntime source, the Lease and the Pod runtime all take theirs from
 * `kubeClient`, so no module races a timer of its own beside a request that
 * stays open.
 */
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

/**
 * A KubeConfig whose API requests are aborted after `requestTimeoutMs` (0:
 * never), so an API server that accepts connections but answers nothing
 * cannot hold a worker, the status writer or a step-down for ever.
 *
 * client-node 1.4 authenticates every request of every API client made with
 * makeApiClient through `applySecurityAuthentication(RequestContext)`, and
 * its fetch layer passes `RequestContext.getSignal()` to node-fetch; setting
 * the signal there bounds the calls of every module (GameRuntime objects,
 * Events, the Lease) without each one passing options. A per-call middleware
 * that sets its own signal (the Lease's renew-deadline bound) runs after
 * this and replaces it. Watches do not come through here (client-node's Watch
 * uses applyToFetchOptions): they are long-lived and bounded by the silence
 * watchdog instead.
 */
export class BoundedKubeConfig extends KubeConfig {
  constructor(readonly requestTimeoutMs: number) {
    super();
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    if (this.requestTimeoutMs > 0 && !context.getSignal()) {
      context.setSignal(AbortSignal.timeout(this.requestTimeoutMs) as Parameters<RequestContext["setSignal"]>[0]);
    }
  }
}

/**
 * A bounded copy of `from` (tests, a kubeconfig loaded elsewhere), or the
 * default chain (in-cluster service account, then $KUBECONFIG, then
 * ~/.kube/config) when `from` is absent.
 */
export function kubeClient(requestTimeoutMs: number, from?: KubeConfig): BoundedKubeConfig {
  const kubeConfig = new BoundedKubeConfig(requestTimeoutMs);
  if (from) kubeConfig.loadFromString(from.exportConfig());
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
