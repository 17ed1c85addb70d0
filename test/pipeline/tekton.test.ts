// The Tekton Pipeline and Tasks. No npm package ships Tekton's CRD schemas (tektoncd/pipeline's
// config/300-crds), and fixtures fetched from GitHub may not be committed here, so this test writes
// down the checks those schemas and Tekton's admission webhook make on tekton.dev/v1 objects
// (pkg/apis/pipeline/v1 *_types.go and *_validation.go): the allowed fields and their types, names
// that are DNS-1123 labels, unique task, param, step and workspace names, runAfter naming tasks of
// the same Pipeline without cycles, every $(params.x) / $(workspaces.x.path) declared, workspace
// bindings naming declared workspaces, and the params a Task requires all passed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { imageMatrix } from '../../src/pipeline/plan.js';
import { BUILD_TASK, INDEX_TASK, tektonPipeline } from '../../src/pipeline/tekton.js';
import { repoRoot } from '../helpers/paths.js';

type Obj = Record<string, unknown>;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PARAM_NAME = /^[a-zA-Z_][a-zA-Z0-9_.-]*$/;

function fields(o: unknown, allowed: string[], where: string, errors: string[], required: string[] = []): Obj {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    errors.push(`${where}: not an object`);
    return {};
  }
  for (const k of Object.keys(o)) if (!allowed.includes(k)) errors.push(`${where}: unknown field ${k}`);
  for (const k of required) if ((o as Obj)[k] === undefined) errors.push(`${where}: ${k} is required`);
  return o as Obj;
}
function list(o: unknown, where: string, errors: string[]): unknown[] {
  if (o === undefined) return [];
  if (!Array.isArray(o)) {
    errors.push(`${where}: not a list`);
    return [];
  }
  return o;
}
function str(o: unknown, where: string, errors: string[]): string {
  if (typeof o !== 'string') errors.push(`${where}: not a string`);
  return String(o);
}
function unique(names: string[], where: string, errors: string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (seen.has(n)) errors.push(`${where}: ${n} declared twice`);
    seen.add(n);
  }
}
function paramSpecs(o: unknown, where: string, errors: string[]): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const [i, p] of list(o, where, errors).entries()) {
    const ps = fields(p, ['name', 'type', 'description', 'default', 'properties', 'enum'], `${where}[${i}]`, errors, ['name']);
    const name = str(ps['name'], `${where}[${i}].name`, errors);
    if (!PARAM_NAME.test(name)) errors.push(`${where}[${i}]: invalid param name ${name}`);
    if (ps['type'] !== undefined && !['string', 'array', 'object'].includes(ps['type'] as string)) errors.push(`${where}[${i}]: type ${String(ps['type'])}`);
    if (ps['default'] !== undefined && (ps['type'] ?? 'string') === 'string' && typeof ps['default'] !== 'string') errors.push(`${where}[${i}]: default is not a string`);
    if (out.has(name)) errors.push(`${where}: ${name} declared twice`);
    out.set(name, ps);
  }
  return out;
}
/** Every $(params.x) and $(workspaces.x.…) in the strings of `o` is declared. */
function references(o: unknown, params: Map<string, unknown>, workspaces: Set<string>, where: string, errors: string[]): void {
  if (typeof o === 'string') {
    for (const m of o.matchAll(/\$\(params\.([^)]+)\)/g)) if (!params.has(m[1]!)) errors.push(`${where}: $(params.${m[1]}) is not declared`);
    for (const m of o.matchAll(/\$\(workspaces\.([^.)]+)\./g)) if (!workspaces.has(m[1]!)) errors.push(`${where}: workspace ${m[1]} is not declared`);
  } else if (Array.isArray(o)) o.forEach((x, i) => references(x, params, workspaces, `${where}[${i}]`, errors));
  else if (o !== null && typeof o === 'object') for (const [k, v] of Object.entries(o)) references(v, params, workspaces, `${where}.${k}`, errors);
}
function metadata(o: unknown, where: string, errors: string[]): string {
  const m = fields(o, ['name', 'namespace', 'labels', 'annotations'], `${where}.metadata`, errors, ['name']);
  const name = str(m['name'], `${where}.metadata.name`, errors);
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) errors.push(`${where}: metadata.name ${name} is not a DNS-1123 subdomain`);
  return name;
}

function checkTask(doc: Obj, errors: string[]): { name: string; params: Map<string, Obj>; workspaces: Set<string> } {
  fields(doc, ['apiVersion', 'kind', 'metadata', 'spec'], 'Task', errors, ['apiVersion', 'kind', 'metadata', 'spec']);
  const name = metadata(doc['metadata'], 'Task', errors);
  const w = `Task ${name}`;
  const spec = fields(doc['spec'], ['description', 'displayName', 'params', 'workspaces', 'volumes', 'steps', 'results', 'sidecars', 'stepTemplate'], `${w}.spec`, errors, ['steps']);
  const params = paramSpecs(spec['params'], `${w}.spec.params`, errors);
  const workspaces = new Set<string>();
  for (const [i, ws] of list(spec['workspaces'], `${w}.spec.workspaces`, errors).entries()) {
    const d = fields(ws, ['name', 'description', 'mountPath', 'readOnly', 'optional'], `${w}.spec.workspaces[${i}]`, errors, ['name']);
    workspaces.add(str(d['name'], `${w}.spec.workspaces[${i}].name`, errors));
  }
  const volumes = new Set<string>();
  for (const [i, v] of list(spec['volumes'], `${w}.spec.volumes`, errors).entries()) {
    const d = fields(v, ['name', 'secret', 'emptyDir', 'configMap', 'persistentVolumeClaim'], `${w}.spec.volumes[${i}]`, errors, ['name']);
    volumes.add(str(d['name'], `${w}.spec.volumes[${i}].name`, errors));
  }
  const steps = list(spec['steps'], `${w}.spec.steps`, errors);
  if (steps.length === 0) errors.push(`${w}: no steps`);
  unique(steps.map((s) => String((s as Obj)['name'])), `${w}.spec.steps`, errors);
  for (const [i, s] of steps.entries()) {
    const st = fields(s, ['name', 'image', 'command', 'args', 'script', 'env', 'workingDir', 'volumeMounts', 'securityContext', 'computeResources', 'timeout', 'onError'], `${w}.spec.steps[${i}]`, errors, ['image']);
    if (!DNS_LABEL.test(String(st['name']))) errors.push(`${w}.spec.steps[${i}]: name is not a DNS-1123 label`);
    if (st['script'] !== undefined && st['command'] !== undefined) errors.push(`${w}.spec.steps[${i}]: script and command are exclusive`);
    for (const [j, e] of list(st['env'], `${w}.spec.steps[${i}].env`, errors).entries()) {
      const ev = fields(e, ['name', 'value', 'valueFrom'], `${w}.spec.steps[${i}].env[${j}]`, errors, ['name']);
      if ((ev['value'] === undefined) === (ev['valueFrom'] === undefined)) errors.push(`${w}.spec.steps[${i}].env[${j}]: exactly one of value and valueFrom`);
    }
    for (const [j, m] of list(st['volumeMounts'], `${w}.spec.steps[${i}].volumeMounts`, errors).entries()) {
      const vm = fields(m, ['name', 'mountPath', 'readOnly', 'subPath'], `${w}.spec.steps[${i}].volumeMounts[${j}]`, errors, ['name', 'mountPath']);
      if (!volumes.has(String(vm['name']))) errors.push(`${w}.spec.steps[${i}]: mounts the undeclared volume ${String(vm['name'])}`);
    }
  }
  references(spec, params, workspaces, w, errors);
  return { name, params, workspaces };
}

function checkPipeline(doc: Obj, tasks: Map<string, ReturnType<typeof checkTask>>, errors: string[]): void {
  fields(doc, ['apiVersion', 'kind', 'metadata', 'spec'], 'Pipeline', errors, ['apiVersion', 'kind', 'metadata', 'spec']);
  const name = metadata(doc['metadata'], 'Pipeline', errors);
  const w = `Pipeline ${name}`;
  const spec = fields(doc['spec'], ['description', 'displayName', 'params', 'workspaces', 'tasks', 'finally', 'results'], `${w}.spec`, errors, ['tasks']);
  const params = paramSpecs(spec['params'], `${w}.spec.params`, errors);
  const workspaces = new Set(list(spec['workspaces'], `${w}.spec.workspaces`, errors).map((x) => String(fields(x, ['name', 'description', 'optional'], `${w}.spec.workspaces`, errors, ['name'])['name'])));
  const pts = list(spec['tasks'], `${w}.spec.tasks`, errors) as Obj[];
  const names = pts.map((t) => String(t['name']));
  unique(names, `${w}.spec.tasks`, errors);
  const after = new Map<string, string[]>();
  for (const [i, t] of pts.entries()) {
    const pt = fields(t, ['name', 'displayName', 'description', 'taskRef', 'taskSpec', 'runAfter', 'params', 'workspaces', 'when', 'retries', 'timeout', 'matrix'], `${w}.spec.tasks[${i}]`, errors, ['name']);
    const tn = String(pt['name']);
    if (!DNS_LABEL.test(tn) || tn.length > 63) errors.push(`${w}: task name ${tn} is not a DNS-1123 label`);
    if ((pt['taskRef'] === undefined) === (pt['taskSpec'] === undefined)) errors.push(`${w} ${tn}: exactly one of taskRef and taskSpec`);
    const ref = fields(pt['taskRef'], ['name', 'kind', 'apiVersion', 'resolver', 'params'], `${w} ${tn}.taskRef`, errors, ['name']);
    const target = tasks.get(String(ref['name']));
    if (target === undefined) errors.push(`${w} ${tn}: taskRef ${String(ref['name'])} is not in the file`);
    const ra = list(pt['runAfter'], `${w} ${tn}.runAfter`, errors).map(String);
    for (const r of ra) if (!names.includes(r)) errors.push(`${w} ${tn}: runAfter ${r} is not a task of the pipeline`);
    after.set(tn, ra);
    const passed = new Set<string>();
    for (const [j, p] of list(pt['params'], `${w} ${tn}.params`, errors).entries()) {
      const pp = fields(p, ['name', 'value'], `${w} ${tn}.params[${j}]`, errors, ['name', 'value']);
      const pn = String(pp['name']);
      if (passed.has(pn)) errors.push(`${w} ${tn}: param ${pn} passed twice`);
      passed.add(pn);
      if (target && !target.params.has(pn)) errors.push(`${w} ${tn}: ${target.name} has no param ${pn}`);
    }
    for (const [pn, ps] of target?.params ?? []) if (ps['default'] === undefined && !passed.has(pn)) errors.push(`${w} ${tn}: required param ${pn} of ${target!.name} not passed`);
    for (const [j, b] of list(pt['workspaces'], `${w} ${tn}.workspaces`, errors).entries()) {
      const wb = fields(b, ['name', 'workspace', 'subPath'], `${w} ${tn}.workspaces[${j}]`, errors, ['name', 'workspace']);
      if (!workspaces.has(String(wb['workspace']))) errors.push(`${w} ${tn}: binds the undeclared pipeline workspace ${String(wb['workspace'])}`);
      if (target && !target.workspaces.has(String(wb['name']))) errors.push(`${w} ${tn}: ${target.name} has no workspace ${String(wb['name'])}`);
    }
    for (const ws of target?.workspaces ?? []) if (!list(pt['workspaces'], '', []).some((b) => (b as Obj)['name'] === ws)) errors.push(`${w} ${tn}: workspace ${ws} of ${target!.name} not bound`);
  }
  references(spec['tasks'], params, workspaces, `${w}.spec.tasks`, errors);
  // No cycles through runAfter (the webhook's DAG build).
  const state = new Map<string, number>();
  const visit = (n: string, path: string[]): void => {
    if (state.get(n) === 2) return;
    if (state.get(n) === 1) {
      errors.push(`${w}: runAfter cycle ${[...path, n].join(' → ')}`);
      return;
    }
    state.set(n, 1);
    for (const m of after.get(n) ?? []) visit(m, [...path, n]);
    state.set(n, 2);
  };
  for (const n of names) visit(n, []);
}

function check(text: string): { errors: string[]; docs: Obj[] } {
  const errors: string[] = [];
  const docs = parseAllDocuments(text).map((d) => {
    if (d.errors.length) errors.push(...d.errors.map((e) => e.message));
    return d.toJS() as Obj;
  }).filter((d) => d !== null);
  const tasks = new Map<string, ReturnType<typeof checkTask>>();
  for (const d of docs) {
    if (d['apiVersion'] !== 'tekton.dev/v1') errors.push(`apiVersion ${String(d['apiVersion'])}`);
    if (d['kind'] === 'Task') {
      const t = checkTask(d, errors);
      tasks.set(t.name, t);
    }
  }
  const pipelines = docs.filter((d) => d['kind'] === 'Pipeline');
  if (pipelines.length !== 1) errors.push(`${pipelines.length} Pipelines`);
  for (const p of pipelines) checkPipeline(p, tasks, errors);
  for (const d of docs) if (d['kind'] !== 'Task' && d['kind'] !== 'Pipeline') errors.push(`unexpected kind ${String(d['kind'])}`);
  return { errors, docs };
}

test('the Tekton Pipeline for images/ passes the v1 schema and webhook checks, one TaskRun per image × arch, runAfter following extends', async () => {
  const matrix = await imageMatrix(join(repoRoot, 'images'), repoRoot);
  const { errors, docs } = check(tektonPipeline(matrix));
  assert.deepEqual(errors, []);
  const pipeline = docs.find((d) => d['kind'] === 'Pipeline')!;
  const tasks = (pipeline['spec'] as { tasks: { name: string; taskRef: { name: string }; runAfter?: string[]; params: { name: string; value: string }[] }[] }).tasks;
  const declared = (pipeline['spec'] as { params: { name: string }[] }).params.map((p) => p.name);
  assert.ok(declared.includes('registry') && declared.includes('sign-key-secret'), 'params for the registry and the key secret');
  for (const img of matrix.images) {
    for (const arch of img.architectures) {
      const t = tasks.find((x) => x.name === `build-${img.name}-${arch}`)!;
      assert.ok(t, `a worker for ${img.name} ${arch}`);
      assert.equal(t.taskRef.name, BUILD_TASK);
      assert.deepEqual(t.runAfter, img.base ? [`build-${img.base}-${arch}`] : undefined);
      assert.equal(t.params.find((p) => p.name === 'platform')!.value, arch);
      assert.equal(t.params.find((p) => p.name === 'definition')!.value, img.path);
    }
    const join_ = tasks.find((x) => x.name === `index-${img.name}`)!;
    assert.equal(join_.taskRef.name, INDEX_TASK);
    assert.deepEqual(join_.runAfter, img.architectures.map((a) => `build-${img.name}-${a}`));
  }
  assert.equal(tasks.length, matrix.images.reduce((n, i) => n + i.architectures.length + 1, 0));
});

test('the Tekton checks fail on what Tekton refuses', async () => {
  const text = tektonPipeline(await imageMatrix(join(repoRoot, 'images'), repoRoot));
  assert.deepEqual(check(text).errors, []);
  const breakIt = (from: string, to: string): string[] => {
    assert.ok(text.includes(from), from);
    return check(text.replace(from, to)).errors;
  };
  assert.ok(breakIt('        - build-static-amd64\n', '        - build-nothing-amd64\n').some((e) => e.includes('runAfter build-nothing-amd64')));
  assert.ok(breakIt('$(params.platform)', '$(params.platfrom)').some((e) => e.includes('not declared')));
  assert.ok(breakIt('  - name: build-static-amd64', '  - name: Build_Static').some((e) => e.includes('DNS-1123')));
  assert.ok(breakIt('      taskRef:\n        name: distill-build', '      taskRefs:\n        name: distill-build').some((e) => e.includes('unknown field taskRefs')));
});
