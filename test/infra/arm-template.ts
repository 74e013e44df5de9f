/**
 * infra/azuredeploy.json as Azure Resource Manager would see it, for one set of parameter values:
 * every expression evaluated (runtime values such as `reference(...)` stay symbolic unless a
 * resolver stands in for Azure), every resource with its id, condition, dependsOn and the ids it
 * refers to. No Azure host is called.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildResourceId, evaluate, isExpression, parseExpression, RuntimeValue, type EvaluationContext } from './arm-expressions.ts';

export const infraDir = fileURLToPath(new URL('../../infra/', import.meta.url));

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export interface Template {
  $schema: string;
  contentVersion: string;
  parameters: Record<string, { type: string; defaultValue?: Json; allowedValues?: Json[]; metadata?: { description?: string } }>;
  variables: Record<string, Json>;
  resources: Array<Record<string, Json>>;
  outputs: Record<string, { type: string; value: Json }>;
}

export const readJson = <T>(file: string): T => JSON.parse(readFileSync(new URL(file, `file://${infraDir}`), 'utf8')) as T;
export const loadTemplate = () => readJson<Template>('azuredeploy.json');
export const loadParametersFile = () => readJson<{ $schema: string; contentVersion: string; parameters: Record<string, { value: Json }> }>('azuredeploy.parameters.json');

/** Every string in a JSON document (object keys included) with its path. */
export function strings(node: Json, at = '', out: Array<{ value: string; path: string }> = []): Array<{ value: string; path: string }> {
  if (typeof node === 'string') out.push({ value: node, path: at || '(root)' });
  else if (Array.isArray(node)) node.forEach((child, i) => strings(child, `${at}[${i}]`, out));
  else if (node && typeof node === 'object') {
    for (const [key, child] of Object.entries(node)) {
      const here = at ? `${at}.${key}` : key;
      if (isExpression(key)) out.push({ value: key, path: `${here} (key)` });
      strings(child, here, out);
    }
  }
  return out;
}

export interface EvaluatedResource {
  /** `resources[3] (Microsoft.Web/sites)`, for messages. */
  label: string;
  type: string;
  name: string;
  id: string;
  deployed: boolean;
  json: Record<string, Json>;
  /** Evaluated resource body (dependsOn excluded). */
  body: Record<string, unknown>;
  dependsOn: string[];
  /** Ids of resources this one refers to through resourceId/reference/list*, its scope or its parent. */
  references: string[];
}

export interface Evaluation {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  resources: EvaluatedResource[];
  outputs: Record<string, unknown>;
  context: EvaluationContext;
}

const SUBSCRIPTION = '11111111-2222-3333-4444-555555555555';
const TENANT = '99999999-8888-7777-6666-555555555555';

/** The id of an extension resource's scope: an id, or `Namespace/type/name[/type/name]` relative to the group. */
function scopeIdOf(context: EvaluationContext, scope: string): string {
  if (scope.startsWith('/')) return scope;
  const [namespace, ...rest] = scope.split('/');
  const types = rest.filter((_, i) => i % 2 === 0);
  const names = rest.filter((_, i) => i % 2 === 1);
  return buildResourceId(context, [namespace, ...types].join('/'), names);
}

/** The resource's id from its type and name (`a/b` for children); an extension resource hangs off its scope. */
function idOf(context: EvaluationContext, type: string, name: string, scope?: string): string {
  const names = name.split('/');
  if (scope === undefined) return buildResourceId(context, type, names);
  const [namespace, ...types] = type.split('/');
  return `${scopeIdOf(context, scope)}/providers/${namespace}/${types.flatMap((t, i) => [t, names[i]]).join('/')}`;
}

/**
 * Evaluates the template for these parameter values (on top of the defaults). `resolve` stands in
 * for Azure's runtime values; without it they stay RuntimeValue.
 */
export function evaluateTemplate(template: Template, values: Record<string, unknown> = {}, resolve?: EvaluationContext['resolve']): Evaluation {
  const context: EvaluationContext = {
    parameters: {},
    variables: {},
    subscriptionId: SUBSCRIPTION,
    resourceGroup: 'rg-esafety',
    tenantId: TENANT,
    location: 'uksouth',
    resolve,
  };
  const value = (node: Json): unknown => {
    if (typeof node === 'string') {
      if (isExpression(node)) return evaluate(parseExpression(node), context);
      return node.startsWith('[[') ? node.slice(1) : node;
    }
    if (Array.isArray(node)) return node.map(value);
    if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [String(value(k)), value(v)]));
    return node;
  };

  for (const [name, definition] of Object.entries(template.parameters)) {
    context.parameters[name] = name in values ? values[name] : definition.defaultValue === undefined ? undefined : value(definition.defaultValue);
  }
  // Variables may refer to each other in any order: evaluated on first use.
  const cache = new Map<string, unknown>();
  for (const name of Object.keys(template.variables)) {
    Object.defineProperty(context.variables, name, {
      enumerable: true,
      get: () => {
        if (!cache.has(name)) cache.set(name, value(template.variables[name]!));
        return cache.get(name);
      },
    });
  }

  const resources: EvaluatedResource[] = template.resources.map((json, i) => {
    const type = String(json.type);
    const name = String(value(json.name!));
    const scope = json.scope === undefined ? undefined : String(value(json.scope));
    return { label: `resources[${i}] (${type} ${name})`, type, name, id: idOf(context, type, name, scope), deployed: true, json, body: {}, dependsOn: [], references: [] };
  });
  const byName = new Map(resources.map((r) => [r.name.toLowerCase(), r.id]));
  context.idOfName = (name) => byName.get(name.toLowerCase());

  for (const resource of resources) {
    const touched = new Set<string>();
    context.touched = touched;
    const { dependsOn, ...rest } = resource.json;
    resource.body = value(rest as Json) as Record<string, unknown>;
    resource.deployed = resource.json.condition === undefined ? true : resource.body.condition === true;
    context.touched = undefined;
    if (typeof resource.body.scope === 'string') touched.add(scopeIdOf(context, resource.body.scope).toLowerCase());
    // A child resource declared on its own needs its parent deployed first.
    const segments = resource.type.split('/').length - 1;
    if (segments > 1 && resource.json.scope === undefined) {
      const parentType = resource.type.split('/').slice(0, -1).join('/');
      touched.add(buildResourceId(context, parentType, resource.name.split('/').slice(0, -1)).toLowerCase());
    }
    touched.delete(resource.id.toLowerCase());
    resource.references = [...touched];
    resource.dependsOn = ((value((dependsOn ?? []) as Json) as unknown[]) ?? []).map((entry) => {
      const text = String(entry);
      return (text.startsWith('/') ? text : byName.get(text.toLowerCase()) ?? text).toLowerCase();
    });
  }
  const outputs = Object.fromEntries(Object.entries(template.outputs).map(([name, output]) => [name, value(output.value)]));
  return { parameters: context.parameters, variables: Object.fromEntries(Object.keys(template.variables).map((k) => [k, context.variables[k]])), resources, outputs, context };
}

export const isRuntime = (value: unknown): value is RuntimeValue => value instanceof RuntimeValue;

/** The app settings the template writes (the Microsoft.Web/sites/config `appsettings` resource). */
export function appSettingsOf(evaluation: Evaluation): Record<string, unknown> {
  const found = evaluation.resources.filter((r) => r.type === 'Microsoft.Web/sites/config' && r.name.endsWith('/appsettings'));
  if (found.length !== 1) throw new Error(`expected one Microsoft.Web/sites/config "appsettings" resource, found ${found.length}`);
  return found[0]!.body.properties as Record<string, unknown>;
}

export const resourcesOfType = (evaluation: Evaluation, type: string) => evaluation.resources.filter((r) => r.type.toLowerCase() === type.toLowerCase());
