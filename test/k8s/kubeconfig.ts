import { KubeConfig } from "@kubernetes/client-node";

/** A KubeConfig for the fake API server: plain http, no credentials. */
export function fakeKubeConfig(serverUrl: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "fake", server: serverUrl, skipTLSVerify: true }],
    users: [{ name: "fake" }],
    contexts: [{ name: "fake", cluster: "fake", user: "fake", namespace: "default" }],
    currentContext: "fake",
  });
  return kc;
}

/**
 * The cluster named by $KUBECONFIG, or null when it is unset. Used to run the
 * same suite against a real cluster: `KUBECONFIG=~/.kube/config npx vitest run test/integration/k8s.test.ts`.
 */
export function realKubeConfig(): KubeConfig | null {
  if (!process.env.KUBECONFIG) return null;
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}
