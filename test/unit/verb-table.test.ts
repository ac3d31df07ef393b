/**
 * The verb table (src/model/verbs.ts) against the contract and against the
 * code it drives: every contract operation has exactly one row (a verb, or
 * one of the router's other routes), each verb's body schema accepts and
 * refuses what the contract's request schema does, the router reaches every
 * row, and the typed client and rtmctl know every verb. A verb added to the
 * contract, the table, or any one of them alone fails here.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import YAML from "yaml";
import { z } from "zod";
import { RtmClient } from "../../src/client/index.js";
import { SPECS, VERBS as CLI_VERBS } from "../../src/cli/args.js";
import { COMMANDS } from "../../src/cli/commands.js";
import { VERB_RULES } from "../../src/controller/verbs.js";
import { ROUTES, Router } from "../../src/http/routes.js";
import { isVerb, VERB_NAMES, VERBS, type VerbName } from "../../src/model/verbs.js";
import { CONTRACT_PATH } from "../helpers/contract.js";

interface SchemaNode {
  $ref?: string;
  type?: string;
  enum?: string[];
  required?: string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean;
}
interface Operation {
  operationId: string;
  requestBody?: { required?: boolean; content: { "application/json": { schema: SchemaNode } } };
}
interface Contract {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, SchemaNode> };
}

const contract = YAML.parse(readFileSync(CONTRACT_PATH, "utf8")) as Contract;
const operations = Object.entries(contract.paths).flatMap(([template, methods]) =>
  Object.entries(methods).map(([method, op]) => ({ template, method: method.toUpperCase(), op })),
);

function resolve(node: SchemaNode): SchemaNode {
  return node.$ref ? contract.components.schemas[node.$ref.replace("#/components/schemas/", "")]! : node;
}

/** A body the contract's schema accepts: every required property with a valid value. */
function validBody(schema: SchemaNode): Record<string, unknown> {
  return Object.fromEntries((schema.required ?? []).map((name) => [name, resolve(schema.properties![name]!).enum?.[0] ?? "registry/galaxy/engine:1.4.2"]));
}

describe("the verb table and the contract", () => {
  it("every contract operation has exactly one row: a verb, or one of the router's other routes", () => {
    for (const { template, method, op } of operations) {
      const verbs = VERB_NAMES.filter((v) => VERBS[v].template === template && VERBS[v].method === method);
      const others = ROUTES.filter((r) => !isVerb(r.name) && r.template === template && r.method === method);
      expect(verbs.length + others.length, `${method} ${template} (${op.operationId})`).toBe(1);
      // Every mutating operation of the contract is a lifecycle verb.
      if (method !== "GET") expect(verbs, `${method} ${template}`).toHaveLength(1);
    }
  });

  it("every verb row is a contract operation with its method, path and operationId", () => {
    for (const verb of VERB_NAMES) {
      const row = VERBS[verb];
      const found = operations.find((o) => o.template === row.template && o.method === row.method);
      expect(found?.op.operationId, verb).toBe(row.operationId);
    }
  });

  it("a verb has a body schema exactly when its contract operation has a request body", () => {
    for (const verb of VERB_NAMES) {
      const row = VERBS[verb];
      const op = operations.find((o) => o.template === row.template && o.method === row.method)!.op;
      expect(row.body !== null, verb).toBe(op.requestBody !== undefined);
      if (op.requestBody) expect(op.requestBody.required, verb).toBe(true);
    }
  });

  it("each body schema accepts and refuses what the contract's request schema does", () => {
    for (const verb of VERB_NAMES) {
      const row = VERBS[verb];
      const op = operations.find((o) => o.template === row.template && o.method === row.method)!.op;
      if (!op.requestBody || !row.body) continue;
      const schema = resolve(op.requestBody.content["application/json"].schema);
      const body: z.ZodType = row.body;
      const valid = validBody(schema);
      expect(body.safeParse(valid).success, `${verb} ${JSON.stringify(valid)}`).toBe(true);
      // additionalProperties: false
      expect(schema.additionalProperties).toBe(false);
      expect(body.safeParse({ ...valid, unknown_field: 1 }).success, `${verb} with an unknown field`).toBe(false);
      for (const name of schema.required ?? []) {
        const rest: Record<string, unknown> = { ...valid };
        delete rest[name];
        expect(body.safeParse(rest).success, `${verb} without ${name}`).toBe(false);
      }
      for (const [name, ref] of Object.entries(schema.properties ?? {})) {
        const prop = resolve(ref);
        expect(body.safeParse({ ...valid, [name]: 42 }).success, `${verb}.${name} as a number`).toBe(prop.type !== "string");
        for (const value of prop.enum ?? []) expect(body.safeParse({ ...valid, [name]: value }).success, `${verb}.${name}=${value}`).toBe(true);
        if (prop.enum) expect(body.safeParse({ ...valid, [name]: "not_in_the_enum" }).success, `${verb}.${name} outside the enum`).toBe(false);
      }
      // No property the contract does not define.
      expect(Object.keys((row.body as unknown as z.ZodObject).shape).sort(), verb).toEqual(Object.keys(schema.properties ?? {}).sort());
    }
  });
});

describe("the code the verb table drives", () => {
  it("the router reaches every verb row at its path, and only with its method", () => {
    const router = new Router(ROUTES);
    for (const verb of VERB_NAMES) {
      const match = router.match(VERBS[verb].template.replace("{game_id}", "game-7"));
      expect(match?.gameId, verb).toBe("game-7");
      expect(match?.routes.map((r) => [r.name, r.method]), verb).toEqual([[verb, VERBS[verb].method]]);
    }
  });

  it("every verb has a controller rule and an operation-log kind of its own name", () => {
    expect(Object.keys(VERB_RULES).sort()).toEqual([...VERB_NAMES].sort());
  });

  it("rtmctl has every verb, as a mutation with a command, and no other mutation", () => {
    for (const verb of VERB_NAMES) {
      expect(CLI_VERBS as readonly string[], verb).toContain(verb);
      expect(typeof COMMANDS[verb], verb).toBe("function");
    }
    const mutations = CLI_VERBS.filter((v) => SPECS[v].mutation === true);
    expect([...mutations].sort()).toEqual([...VERB_NAMES].sort());
  });

  it("the typed client sends each verb with the row's method and path, a body only when the row has one", async () => {
    const sent: { method: string; url: string; body: string | null }[] = [];
    const fetchStub: typeof fetch = async (input, init) => {
      sent.push({ method: String(init?.method), url: String(input), body: init?.body === undefined ? null : String(init.body) });
      return new Response(JSON.stringify({ game_id: "g/1" }), { status: 200, headers: { "content-type": "application/json" } });
    };
    const client = new RtmClient({ baseUrl: "http://rtm.test:8096", timeoutMs: 1000, fetch: fetchStub });
    const calls: Record<VerbName, () => Promise<unknown>> = {
      start: () => client.start("g/1", "registry/galaxy/engine:1.4.2"),
      stop: () => client.stop("g/1", "finished"),
      restart: () => client.restart("g/1"),
      patch: () => client.patch("g/1", "registry/galaxy/engine:1.4.3"),
      cleanup: () => client.cleanup("g/1"),
    };
    for (const verb of VERB_NAMES) {
      sent.length = 0;
      await calls[verb]();
      const path = VERBS[verb].template.replace("{game_id}", "g%2F1");
      expect(sent, verb).toEqual([expect.objectContaining({ method: VERBS[verb].method, url: `http://rtm.test:8096${path}` })]);
      expect(sent[0]!.body !== null, verb).toBe(VERBS[verb].body !== null);
    }
    sent.length = 0;
    await client.verb("stop", "g/1", { reason: "cancelled" });
    expect(sent[0]!.body).toBe('{"reason":"cancelled"}');
  });

  it("the console's buttons call each verb it offers with the row's method and path, and offer only stop reasons the stop body accepts", () => {
    // Plain browser JavaScript that cannot import the table: read as text.
    const assets = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../src/http/ui/assets");
    const api = readFileSync(path.join(assets, "api.js"), "utf8");
    const calls = [...api.matchAll(/^ {2}(\w+): \([^)]*\) => json\("(\w+)", `\$\{INTERNAL\}\/\$\{id\(gameId\)\}(\/[a-z]+)`/gm)];
    const offered = calls.map(([, name, method, suffix]) => ({ name, method, template: `/api/v1/internal/runtimes/{game_id}${suffix}` }));
    expect(offered.map((c) => c.name).sort()).toEqual(["cleanup", "patch", "restart", "stop"]);
    expect(api).toContain('const INTERNAL = "/api/v1/internal/runtimes";');
    for (const call of offered) {
      expect(isVerb(call.name!), call.name).toBe(true);
      const row = VERBS[call.name as VerbName];
      expect({ method: call.method, template: call.template }, call.name).toEqual({ method: row.method, template: row.template });
    }
    const actions = readFileSync(path.join(assets, "actions.js"), "utf8");
    const reasons = /const STOP_REASONS = \[([^\]]*)\]/.exec(actions)?.[1]?.split(",").map((r) => JSON.parse(r.trim()) as string);
    // A subset (orphan_cleanup is the controller's own), each one the stop body accepts.
    expect(reasons?.length).toBeGreaterThan(0);
    for (const reason of reasons ?? []) expect(VERBS.stop.body.safeParse({ reason }).success, reason).toBe(true);
  });
});
