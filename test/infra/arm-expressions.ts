/**
 * A parser and a small evaluator for ARM template expressions (`"[concat('a', parameters('b'))]"`),
 * enough to check infra/azuredeploy.json without Azure: function calls (with an optional
 * `namespace.` for user-defined functions), string literals with '' escapes, integers, and property
 * (`.name`) and index (`[expr]`) access. A string starting with `[[` is a literal, not an expression.
 */

export type Expr =
  | { type: 'string'; value: string; at: number }
  | { type: 'number'; value: number; at: number }
  | { type: 'call'; name: string; namespace?: string; args: Expr[]; at: number }
  | { type: 'property'; object: Expr; name: string; at: number }
  | { type: 'index'; object: Expr; index: Expr; at: number };

export class ExpressionError extends Error {
  constructor(message: string, readonly source: string, readonly at: number) {
    super(`${message} at character ${at + 1} of ${source}`);
    this.name = 'ExpressionError';
  }
}

/** Is this JSON string an expression (as opposed to a literal, or a `[[` escaped literal)? */
export function isExpression(value: string): boolean {
  return value.startsWith('[') && value.endsWith(']') && !value.startsWith('[[');
}

/** Parses the text inside the brackets of `[ ... ]`; `source` is the whole string, for messages. */
export function parseExpression(source: string): Expr {
  if (!isExpression(source)) throw new ExpressionError('not an expression (it must start with "[" and end with "]")', source, 0);
  const text = source.slice(1, -1);
  let pos = 0;
  const offset = 1;
  const fail = (message: string): never => {
    throw new ExpressionError(message, source, pos + offset);
  };
  const skipSpace = () => {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  };
  const peek = () => {
    skipSpace();
    return text[pos];
  };
  const expect = (char: string) => {
    if (peek() !== char) fail(`expected "${char}"${pos < text.length ? ` but found "${text[pos]}"` : ' but the expression ended'}`);
    pos++;
  };
  const identifier = (): string => {
    skipSpace();
    const match = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(pos));
    if (!match) fail(pos < text.length ? `expected a name but found "${text[pos]}"` : 'expected a name but the expression ended');
    pos += match![0].length;
    return match![0];
  };

  const primary = (): Expr => {
    const char = peek();
    const at = pos + offset;
    if (char === undefined) return fail('expected a value but the expression ended');
    if (char === "'") {
      pos++;
      let value = '';
      for (;;) {
        if (pos >= text.length) {
          pos = at - offset;
          return fail('unterminated string literal');
        }
        const c = text[pos++]!;
        if (c === "'") {
          if (text[pos] === "'") {
            value += "'";
            pos++;
          } else break;
        } else value += c;
      }
      return { type: 'string', value, at };
    }
    if (/[-0-9]/.test(char)) {
      const match = /^-?\d+/.exec(text.slice(pos));
      if (!match) return fail(`expected a number but found "${char}"`);
      pos += match[0].length;
      return { type: 'number', value: Number(match[0]), at };
    }
    if (/[A-Za-z_]/.test(char)) {
      let name = identifier();
      let namespace: string | undefined;
      if (peek() === '.') {
        // namespace.function(...) for user-defined functions
        pos++;
        namespace = name;
        name = identifier();
      }
      if (peek() !== '(') {
        return fail(`"${namespace ? `${namespace}.` : ''}${name}" must be called: a function name is followed by "("`);
      }
      pos++;
      const args: Expr[] = [];
      if (peek() === ')') pos++;
      else {
        for (;;) {
          args.push(expression());
          const next = peek();
          if (next === ',') {
            pos++;
            continue;
          }
          if (next === ')') {
            pos++;
            break;
          }
          fail(next === undefined ? `unclosed "(" of ${name}(` : `expected "," or ")" in the arguments of ${name}( but found "${next}"`);
        }
      }
      return { type: 'call', name, namespace, args, at };
    }
    return fail(`unexpected "${char}"`);
  };

  const expression = (): Expr => {
    let node = primary();
    for (;;) {
      const char = peek();
      if (char === '.') {
        pos++;
        const at = pos + offset;
        node = { type: 'property', object: node, name: identifier(), at };
      } else if (char === '[') {
        pos++;
        const at = pos + offset;
        const index = expression();
        expect(']');
        node = { type: 'index', object: node, index, at };
      } else return node;
    }
  };

  const root = expression();
  if (peek() !== undefined) fail(`unexpected "${text[pos]}" after the end of the expression`);
  if (root.type !== 'call' && !(root.type === 'property' || root.type === 'index')) {
    // A bare literal in brackets is legal ARM but almost always a mistake.
    fail('an expression must be a function call');
  }
  return root;
}

/** Every function call in an expression, outermost first, with its parent call (if any). */
export function calls(expr: Expr, parent?: Extract<Expr, { type: 'call' }>, out: Array<{ call: Extract<Expr, { type: 'call' }>; parent?: Extract<Expr, { type: 'call' }> }> = []) {
  switch (expr.type) {
    case 'call':
      out.push({ call: expr, parent });
      for (const arg of expr.args) calls(arg, expr, out);
      break;
    case 'property':
      calls(expr.object, parent, out);
      break;
    case 'index':
      calls(expr.object, parent, out);
      calls(expr.index, parent, out);
      break;
  }
  return out;
}

/** The ARM template functions (https://learn.microsoft.com/azure/azure-resource-manager/templates/template-functions). */
export const ARM_FUNCTIONS = new Set(
  [
    // any, array, comparison, logical
    'array', 'concat', 'contains', 'createArray', 'empty', 'first', 'flatten', 'indexOf', 'intersection', 'items', 'join', 'last', 'lastIndexOf', 'length', 'max', 'min', 'range', 'skip', 'take', 'tryGet', 'union',
    'coalesce', 'equals', 'greater', 'greaterOrEquals', 'less', 'lessOrEquals',
    'and', 'bool', 'false', 'if', 'not', 'or', 'true',
    // cidr, date, deployment, lambda, numeric, object
    'parseCidr', 'cidrSubnet', 'cidrHost', 'dateTimeAdd', 'dateTimeFromEpoch', 'dateTimeToEpoch', 'utcNow',
    'deployment', 'environment', 'parameters', 'variables',
    'filter', 'groupBy', 'lambda', 'lambdaVariables', 'map', 'mapValues', 'reduce', 'sort', 'toObject',
    'add', 'copyIndex', 'div', 'float', 'int', 'mod', 'mul', 'sub',
    'createObject', 'json', 'null', 'objectKeys', 'shallowMerge',
    // resource, scope
    'extensionResourceId', 'listAccountSas', 'listKeys', 'listSecrets', 'list', 'managementGroupResourceId', 'pickZones', 'providers', 'reference', 'references', 'resourceId', 'subscriptionResourceId', 'tenantResourceId',
    'managementGroup', 'resourceGroup', 'subscription', 'tenant',
    // string
    'base64', 'base64ToJson', 'base64ToString', 'dataUri', 'dataUriToString', 'endsWith', 'format', 'guid', 'newGuid', 'padLeft', 'replace', 'split', 'startsWith', 'string', 'substring', 'toLower', 'toUpper', 'trim', 'uniqueString', 'uri', 'uriComponent', 'uriComponentToString',
  ].map((name) => name.toLowerCase()),
);

export const isArmFunction = (name: string) => ARM_FUNCTIONS.has(name.toLowerCase()) || /^list[A-Za-z]*$/.test(name);

// ---------------------------------------------------------------------------------------------
// Evaluation

/** A value only Azure knows at deployment time: `reference(x).y`, a key, the time. */
export class RuntimeValue {
  constructor(readonly description: string, readonly target?: string, readonly path: string[] = []) {}
  toString(): string {
    return `<${this.description}>`;
  }
}

export interface EvaluationContext {
  parameters: Record<string, unknown>;
  variables: Record<string, unknown>;
  subscriptionId: string;
  resourceGroup: string;
  tenantId: string;
  location: string;
  /** Resource ids (lower case) touched by resourceId/reference/list* while evaluating: the dependencies. */
  touched?: Set<string>;
  /** Stands in for Azure: the value of `reference(target).path`, or undefined to keep it unknown. */
  resolve?: (target: string, path: string[]) => unknown;
  /** Resolves a resource name to its id, for reference('name'). */
  idOfName?: (name: string) => string | undefined;
}

type Value = unknown;

const isRuntime = (value: Value): value is RuntimeValue => value instanceof RuntimeValue;

/** A deterministic stand-in for uniqueString (13 lowercase characters, like Azure's). */
function fakeUniqueString(...parts: string[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (const char of parts.join('|')) {
    h1 = Math.imul(h1 ^ char.charCodeAt(0), 16777619) >>> 0;
    h2 = Math.imul(h2 + char.charCodeAt(0), 2246822519) >>> 0;
  }
  return (h1.toString(36) + h2.toString(36) + 'abcdefghijklm').slice(0, 13);
}

function fakeGuid(...parts: string[]): string {
  const hex = Array.from({ length: 4 }, (_, i) => fakeUniqueString(String(i), ...parts))
    .join('')
    .split('')
    .map((c) => (parseInt(c, 36) % 16).toString(16))
    .join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `/subscriptions/S/resourceGroups/G/providers/Ns/type1/name1/type2/name2`, as resourceId builds it. */
export function buildResourceId(context: Pick<EvaluationContext, 'subscriptionId' | 'resourceGroup'>, type: string, names: string[], scope?: { subscriptionId?: string; resourceGroup?: string }): string {
  const [namespace, ...types] = type.split('/');
  if (types.length !== names.length) throw new Error(`resourceId('${type}', ...) needs ${types.length} name(s), got ${names.length}`);
  const segments = types.flatMap((t, i) => [t, names[i]!]);
  return `/subscriptions/${scope?.subscriptionId ?? context.subscriptionId}/resourceGroups/${scope?.resourceGroup ?? context.resourceGroup}/providers/${namespace}/${segments.join('/')}`;
}

export function evaluate(expr: Expr, context: EvaluationContext): Value {
  const ev = (e: Expr) => evaluate(e, context);
  const touch = (id: string) => context.touched?.add(id.toLowerCase());
  switch (expr.type) {
    case 'string':
    case 'number':
      return expr.value;
    case 'property': {
      const object = ev(expr.object);
      if (isRuntime(object)) {
        const path = [...object.path, expr.name];
        const resolved = object.target !== undefined ? context.resolve?.(object.target, path) : undefined;
        return resolved !== undefined ? resolved : new RuntimeValue(`${object.description}.${expr.name}`, object.target, path);
      }
      if (object && typeof object === 'object') {
        const key = Object.keys(object).find((k) => k.toLowerCase() === expr.name.toLowerCase());
        if (key === undefined) throw new Error(`no property "${expr.name}" (has ${Object.keys(object).join(', ')})`);
        return (object as Record<string, unknown>)[key];
      }
      throw new Error(`cannot read "${expr.name}" of ${JSON.stringify(object)}`);
    }
    case 'index': {
      const object = ev(expr.object);
      const index = ev(expr.index);
      if (isRuntime(object) || isRuntime(index)) return new RuntimeValue(`${String(object)}[${String(index)}]`);
      if (Array.isArray(object) && typeof index === 'number') return object[index];
      if (object && typeof object === 'object' && typeof index === 'string') return (object as Record<string, unknown>)[index];
      throw new Error(`cannot index ${JSON.stringify(object)} with ${JSON.stringify(index)}`);
    }
    case 'call':
      break;
  }
  const name = expr.name.toLowerCase();
  // Lazy: only the branch taken is evaluated, as Azure does.
  if (name === 'if') {
    const condition = ev(expr.args[0]!);
    if (isRuntime(condition)) {
      ev(expr.args[1]!);
      ev(expr.args[2]!);
      return new RuntimeValue(`if(${condition.description})`);
    }
    return condition ? ev(expr.args[1]!) : ev(expr.args[2]!);
  }
  const args = expr.args.map(ev);
  const anyRuntime = args.some(isRuntime);
  const str = (value: Value) => (isRuntime(value) ? value.toString() : typeof value === 'object' ? JSON.stringify(value) : String(value));
  const runtimeString = (description: string) => new RuntimeValue(description);
  switch (name) {
    case 'parameters': {
      const key = String(args[0]);
      if (!(key in context.parameters)) throw new Error(`parameters('${key}') is not a declared parameter`);
      return context.parameters[key];
    }
    case 'variables': {
      const key = String(args[0]);
      if (!(key in context.variables)) throw new Error(`variables('${key}') is not a declared variable`);
      return context.variables[key];
    }
    case 'concat':
      if (args.every(Array.isArray)) return (args as unknown[][]).flat();
      return anyRuntime ? runtimeString(args.map(str).join('')) : args.map(str).join('');
    case 'format': {
      const [template, ...values] = args;
      const out = String(template).replace(/\{(\d+)\}/g, (_, i: string) => str(values[Number(i)]));
      return anyRuntime ? runtimeString(out) : out;
    }
    case 'tolower':
      return anyRuntime ? runtimeString(str(args[0]).toLowerCase()) : String(args[0]).toLowerCase();
    case 'toupper':
      return anyRuntime ? runtimeString(str(args[0]).toUpperCase()) : String(args[0]).toUpperCase();
    case 'replace':
      return anyRuntime ? runtimeString(str(args[0])) : String(args[0]).split(String(args[1])).join(String(args[2]));
    case 'take':
      return typeof args[0] === 'string' ? args[0].slice(0, Number(args[1])) : Array.isArray(args[0]) ? args[0].slice(0, Number(args[1])) : args[0];
    case 'skip':
      return typeof args[0] === 'string' ? args[0].slice(Number(args[1])) : Array.isArray(args[0]) ? args[0].slice(Number(args[1])) : args[0];
    case 'string':
      return typeof args[0] === 'boolean' ? (args[0] ? 'True' : 'False') : str(args[0]);
    case 'int':
      return Number(args[0]);
    case 'bool':
      return args[0] === true || String(args[0]).toLowerCase() === 'true';
    case 'true':
      return true;
    case 'false':
      return false;
    case 'null':
      return null;
    case 'json':
      return JSON.parse(String(args[0]));
    case 'equals':
      return anyRuntime ? new RuntimeValue('equals') : JSON.stringify(args[0]) === JSON.stringify(args[1]);
    case 'not':
      return anyRuntime ? new RuntimeValue('not') : !args[0];
    case 'and':
      return anyRuntime ? new RuntimeValue('and') : args.every(Boolean);
    case 'or':
      return anyRuntime ? new RuntimeValue('or') : args.some(Boolean);
    case 'empty': {
      const v = args[0];
      if (isRuntime(v)) return new RuntimeValue('empty');
      return v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && Object.keys(v as object).length === 0);
    }
    case 'length':
      return isRuntime(args[0]) ? new RuntimeValue('length') : (args[0] as string | unknown[]).length;
    case 'createobject': {
      const out: Record<string, unknown> = {};
      for (let i = 0; i < args.length; i += 2) out[String(args[i])] = args[i + 1];
      return out;
    }
    case 'createarray':
      return args;
    case 'coalesce':
      return args.find((v) => v !== null && v !== undefined);
    case 'uniquestring':
      return anyRuntime ? new RuntimeValue('uniqueString') : fakeUniqueString(...args.map(String));
    case 'guid':
      return anyRuntime ? new RuntimeValue('guid') : fakeGuid(...args.map(String));
    case 'resourcegroup':
      return {
        id: `/subscriptions/${context.subscriptionId}/resourceGroups/${context.resourceGroup}`,
        name: context.resourceGroup,
        location: context.location,
      };
    case 'subscription':
      return { id: `/subscriptions/${context.subscriptionId}`, subscriptionId: context.subscriptionId, tenantId: context.tenantId };
    case 'tenant':
      return { tenantId: context.tenantId };
    case 'environment':
      return { name: 'AzureCloud', suffixes: { keyvaultDns: '.vault.azure.net', storage: 'core.windows.net' } };
    case 'resourceid': {
      const strings = args.map(String);
      const typeIndex = strings.findIndex((s) => /^[A-Za-z0-9]+\.[A-Za-z0-9.]+\/.+/.test(s));
      if (typeIndex < 0) throw new Error(`resourceId(${strings.join(', ')}) has no resource type`);
      const scope = typeIndex === 2 ? { subscriptionId: strings[0], resourceGroup: strings[1] } : typeIndex === 1 ? { resourceGroup: strings[0] } : undefined;
      const id = buildResourceId(context, strings[typeIndex]!, strings.slice(typeIndex + 1), scope);
      touch(id);
      return id;
    }
    case 'subscriptionresourceid': {
      const [type, ...names] = args.map(String);
      const [namespace, ...types] = type!.split('/');
      return `/subscriptions/${context.subscriptionId}/providers/${namespace}/${types.flatMap((t, i) => [t, names[i]]).join('/')}`;
    }
    case 'extensionresourceid': {
      const [scope, type, ...names] = args.map(String);
      const [namespace, ...types] = type!.split('/');
      const id = `${scope}/providers/${namespace}/${types.flatMap((t, i) => [t, names[i]]).join('/')}`;
      touch(id);
      return id;
    }
    case 'reference': {
      const target = String(args[0]);
      const id = target.startsWith('/') ? target : context.idOfName?.(target);
      if (id) touch(id);
      const full = String(args[2] ?? '').toLowerCase() === 'full';
      const base = new RuntimeValue(`reference(${target})`, id ?? target, full ? ['(full)'] : []);
      return base;
    }
    case 'utcnow':
    case 'newguid':
      return new RuntimeValue(name);
    default:
      if (name.startsWith('list')) {
        const id = String(args[0]);
        touch(id);
        return new RuntimeValue(`${expr.name}(${id})`, id);
      }
      throw new Error(`${expr.name}() is not supported by this evaluator`);
  }
}
