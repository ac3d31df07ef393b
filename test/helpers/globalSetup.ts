/**
 * vitest globalSetup (vitest.config.ts): every Docker network a test creates
 * carries this run's id (createTestNetwork), and at the end of the run the
 * ones still there are removed and named. Each test removes its own network
 * when it closes its app; one a run leaves behind (a close that never ran, or
 * whose removal failed) used to stay for good: a run left one empty network
 * a time, and enough of them once used up dockerd's address pools. Only this
 * run's networks are touched, never another run's or anyone else's.
 */
import { testDocker, TEST_RUN_LABEL } from "./docker.js";

export default function setup(): () => Promise<void> {
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  // Forked test workers inherit it.
  process.env.RTM_TEST_RUN = runId;
  return async () => {
    const docker = testDocker();
    const left = await docker.listNetworks({ filters: { label: [`${TEST_RUN_LABEL}=${runId}`] } }).catch(() => []);
    for (const n of left) {
      try {
        await docker.getNetwork(n.Id).remove();
        console.warn(`test run teardown: removed the Docker network ${n.Name}, which a test left behind`);
      } catch (err) {
        console.warn(`test run teardown: could not remove the Docker network ${n.Name} a test left behind: ${(err as Error).message}`);
      }
    }
  };
}
