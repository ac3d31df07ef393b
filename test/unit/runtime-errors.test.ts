import { describe, expect, it } from "vitest";
import { CODE_BY_FAILURE_KIND, contractError, withContractErrors } from "../../src/controller/runtimeErrors.js";
import { PERMANENT_CODES, RtmError } from "../../src/model/errors.js";
import { RUNTIME_FAILURE_KINDS, RuntimeFailure } from "../../src/model/runtimeFailure.js";
import { StubPodRuntime } from "../helpers/podRuntime.js";
import { ApiException } from "@kubernetes/client-node";
import { asFailure } from "../../src/kube/calls.js";

describe("runtime failures as contract errors", () => {
  it("gives every kind the code users saw before the port had kinds", () => {
    expect(Object.keys(CODE_BY_FAILURE_KIND).sort()).toEqual([...RUNTIME_FAILURE_KINDS].sort());
    expect(CODE_BY_FAILURE_KIND).toEqual({
      unavailable: "docker_unavailable",
      image_not_found: "image_pull_failed",
      pull_failed: "image_pull_failed",
      config_refused: "start_config_invalid",
      refused_for_now: "service_unavailable",
      start_failed: "container_start_failed",
      not_found: "not_found",
      conflict: "conflict",
      failed: "internal_error",
    });
    // Only a refused config is worth not retrying; the rest back off.
    const permanent = RUNTIME_FAILURE_KINDS.filter((k) => PERMANENT_CODES.has(CODE_BY_FAILURE_KIND[k]));
    expect(permanent).toEqual(["config_refused"]);
  });

  it("a create the cluster refuses for now (quota, a terminating namespace, 429) is a transient 503 service_unavailable; a refused config stays permanent", () => {
    const answered = (code: number, message: string) => new ApiException(code, "refused", JSON.stringify({ kind: "Status", code, message }), {});
    const quota = asFailure(answered(403, 'pods "galaxy-game-g1" is forbidden: exceeded quota: games, requested: count/pods=1, used: count/pods=2, limited: count/pods=2'), "create", "creating Pod");
    const terminating = asFailure(answered(403, 'pods "galaxy-game-g1" is forbidden: unable to create new content in namespace games because it is being terminated'), "create", "creating Pod");
    const throttled = asFailure(answered(429, "Too many requests, please try again later."), "create", "creating Pod");
    const podSecurity = asFailure(answered(403, 'pods "galaxy-game-g1" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true'), "create", "creating Pod");
    for (const f of [quota, terminating, throttled]) {
      expect(f.kind).toBe("refused_for_now");
      const err = contractError(f);
      expect(err.code).toBe("service_unavailable");
      expect(PERMANENT_CODES.has(err.code)).toBe(false);
    }
    expect(quota.message).toMatch(/exceeded quota/);
    expect(contractError(podSecurity).code).toBe("start_config_invalid");
  });

  it("keeps the runtime's message and details, and the failure as the cause", () => {
    const failure = new RuntimeFailure("conflict", "create", "container name x is already in use", { existingContainerId: "abc" });
    const err = contractError(failure);
    expect(err).toBeInstanceOf(RtmError);
    expect(err).toMatchObject({ code: "conflict", message: "container name x is already in use", details: { operation: "create", existingContainerId: "abc" } });
    expect(err.cause).toBe(failure);
  });

  it("passes a contract error through and makes anything else internal_error", () => {
    const already = new RtmError("service_unavailable", "lost leadership");
    expect(contractError(already)).toBe(already);
    expect(contractError(new Error("boom")).code).toBe("internal_error");
  });

  it("wraps a runtime so failures leave every method mapped and answers unchanged", async () => {
    const pods = new StubPodRuntime("rtm", "galaxy-games");
    const wrapped = withContractErrors(withContractErrors(pods));
    expect(wrapped.name).toBe("pods");
    expect(await wrapped.setupProblem()).toBeNull();
    // Optional members pass through as the runtime has them: a swap in place, no image metadata.
    expect(wrapped.verbs).toBe(pods.verbs);
    expect(typeof wrapped.updateImage).toBe("function");
    expect(wrapped.imageMetadata).toBeUndefined();
    await expect(wrapped.logStream("pod-404", { tail: 10, follow: false, signal: new AbortController().signal })).rejects.toMatchObject({ name: "RtmError", code: "not_found" });
    await expect(wrapped.start("pod-404")).rejects.toMatchObject({ name: "RtmError", code: "container_start_failed" });
  });
});
