// A Tekton Pipeline (tekton.dev/v1) for an image matrix: a TaskRun per image × architecture, each a
// `distill build --per-platform` worker, `runAfter` following `extends` (an image's worker starts once
// its base's worker for the same architecture has finished, so the base layers are in the registry
// cache), and one `distill index` join per image after all its workers. Nothing is shared between the
// TaskRuns but the registry: each has its own emptyDir cache; the source workspace is read only.
//
// Shapes follow Tekton's v1 API (pkg/apis/pipeline/v1: Pipeline, PipelineTask, Task, Step, ParamSpec,
// WorkspaceDeclaration) and the validation its webhook applies (names are DNS-1123 labels, runAfter
// names tasks of the same pipeline, every $(params.x) is declared).
import { stringify } from 'yaml';
import { DISTILL_VERSION } from '../version.js';
import { jobName, type ImageMatrix } from './plan.js';

export interface PipelineOptions {
  /** metadata.name of the Pipeline (default distill-images). */
  name?: string;
  /** The npm package spec a step installs (default distill@<this version>). */
  distillPackage?: string;
}

export const BUILD_TASK = 'distill-build';
export const INDEX_TASK = 'distill-index';

const KEY_DIR = '/distill/sign-key';
const AUTH_DIR = '/distill/registry-auth';

const commonParams = [
  { name: 'registry', type: 'string', description: 'Repository prefix the images are pushed under, e.g. registry.example.com/distill' },
  { name: 'sign-key-secret', type: 'string', description: 'Secret with cosign.key (a cosign private key) and password (its password)' },
  { name: 'registry-auth-secret', type: 'string', description: 'Secret of type kubernetes.io/dockerconfigjson with push credentials for the registry' },
  { name: 'distill-package', type: 'string', description: 'npm package spec of distill to install' },
  { name: 'node-image', type: 'string', description: 'Container image with Node.js 20 or later and npm' },
  { name: 'mirror-flags', type: 'string', description: 'Extra distill flags naming the Debian mirrors, e.g. --mirror debian=https://…/debian (empty: the definitions\' sources)' },
  { name: 'image', type: 'string', description: 'Image name (its repository under the registry)' },
  { name: 'definition', type: 'string', description: 'The image directory in the source workspace' },
];

function task(name: string, description: string, extraParams: object[], command: string): object {
  return {
    apiVersion: 'tekton.dev/v1',
    kind: 'Task',
    metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'distill' } },
    spec: {
      description,
      params: [...commonParams, ...extraParams],
      workspaces: [{ name: 'source', description: 'A checkout with the image definitions and their locks', readOnly: true }],
      volumes: [
        { name: 'sign-key', secret: { secretName: '$(params.sign-key-secret)' } },
        { name: 'registry-auth', secret: { secretName: '$(params.registry-auth-secret)', items: [{ key: '.dockerconfigjson', path: 'config.json' }] } },
        { name: 'distill-cache', emptyDir: {} },
      ],
      steps: [
        {
          name: 'distill',
          image: '$(params.node-image)',
          workingDir: '$(workspaces.source.path)',
          env: [
            { name: 'COSIGN_PASSWORD', valueFrom: { secretKeyRef: { name: '$(params.sign-key-secret)', key: 'password' } } },
            { name: 'DOCKER_CONFIG', value: AUTH_DIR },
            { name: 'XDG_CACHE_HOME', value: '/distill/cache' },
            { name: 'NPM_CONFIG_PREFIX', value: '/distill/cache/npm' },
          ],
          volumeMounts: [
            { name: 'sign-key', mountPath: KEY_DIR, readOnly: true },
            { name: 'registry-auth', mountPath: AUTH_DIR, readOnly: true },
            { name: 'distill-cache', mountPath: '/distill/cache' },
          ],
          script: ['#!/bin/sh', 'set -eu', 'npm install --global --no-audit --no-fund "$(params.distill-package)"', `/distill/cache/npm/bin/${command}`, ''].join('\n'),
        },
      ],
    },
  };
}

export function tektonPipeline(matrix: ImageMatrix, opts: PipelineOptions = {}): string {
  const buildTask = task(
    BUILD_TASK,
    'One distill worker: builds one platform of one image and pushes its <variant>-<arch> tags, signed, with SBOM attestations; finished layers go to and come from the registry cache.',
    [{ name: 'platform', type: 'string', description: 'Debian architecture to build (amd64, arm64, …)' }],
    'distill build "$(params.definition)" --platform "$(params.platform)" --per-platform --push "$(params.registry)/$(params.image)" --cache-repo "$(params.registry)/distill-cache" --sign-key ' +
      `${KEY_DIR}/cosign.key $(params.mirror-flags)`,
  );
  const indexTask = task(
    INDEX_TASK,
    'The join: checks every platform image of one image against its locks and pushes, signs and attests the multi-arch indexes.',
    [],
    `distill index "$(params.definition)" --push "$(params.registry)/$(params.image)" --sign-key ${KEY_DIR}/cosign.key`,
  );
  const passed = ['registry', 'sign-key-secret', 'registry-auth-secret', 'distill-package', 'node-image', 'mirror-flags'].map((p) => ({ name: p, value: `$(params.${p})` }));
  const tasks: object[] = [];
  for (const img of matrix.images) {
    const builds: string[] = [];
    for (const arch of img.architectures) {
      const name = jobName('build', img.name, arch);
      builds.push(name);
      const base = img.base !== undefined ? matrix.images.find((b) => b.name === img.base) : undefined;
      tasks.push({
        name,
        taskRef: { name: BUILD_TASK },
        ...(base && base.architectures.includes(arch) ? { runAfter: [jobName('build', base.name, arch)] } : {}),
        params: [...passed, { name: 'image', value: img.name }, { name: 'definition', value: img.path }, { name: 'platform', value: arch }],
        workspaces: [{ name: 'source', workspace: 'source' }],
      });
    }
    tasks.push({
      name: jobName('index', img.name),
      taskRef: { name: INDEX_TASK },
      runAfter: builds,
      params: [...passed, { name: 'image', value: img.name }, { name: 'definition', value: img.path }],
      workspaces: [{ name: 'source', workspace: 'source' }],
    });
  }
  const pipeline = {
    apiVersion: 'tekton.dev/v1',
    kind: 'Pipeline',
    metadata: { name: opts.name ?? 'distill-images', labels: { 'app.kubernetes.io/managed-by': 'distill' }, annotations: { 'distill.dev/generated-by': `distill ${DISTILL_VERSION}` } },
    spec: {
      description: `Builds ${matrix.images.map((i) => i.name).join(', ')}: one worker per image and architecture, one join per image, sharing only the registry.`,
      params: [
        { name: 'registry', type: 'string', description: commonParams[0]!.description },
        { name: 'sign-key-secret', type: 'string', description: commonParams[1]!.description },
        { name: 'registry-auth-secret', type: 'string', description: commonParams[2]!.description },
        { name: 'distill-package', type: 'string', default: opts.distillPackage ?? `distill@${DISTILL_VERSION}`, description: commonParams[3]!.description },
        { name: 'node-image', type: 'string', default: 'node:20-bookworm-slim', description: commonParams[4]!.description },
        { name: 'mirror-flags', type: 'string', default: '', description: commonParams[5]!.description },
      ],
      workspaces: [{ name: 'source', description: 'A checkout of the repository with the image definitions and their locks' }],
      tasks,
    },
  };
  const doc = (o: object): string => stringify(o, { lineWidth: 0 });
  return [
    `# Generated by distill ${DISTILL_VERSION} (distill pipeline --engine tekton). Apply with kubectl apply -f,`,
    '# then start a PipelineRun with the registry, the two secrets and a source workspace (see README, Scale-out).',
    '---',
    doc(buildTask).trimEnd(),
    '---',
    doc(indexTask).trimEnd(),
    '---',
    doc(pipeline),
  ].join('\n');
}
