/** The ARM expression parser the template tests rely on: what it accepts, and what it refuses and where. */
import { describe, expect, it } from 'vitest';
import { calls, evaluate, ExpressionError, isExpression, parseExpression, RuntimeValue, type EvaluationContext } from './arm-expressions.ts';

const context = (): EvaluationContext => ({
  parameters: { name: 'Esafety', flag: true, secret: '' },
  variables: { names: { vault: 'kv-1' }, list: ['a', 'b'] },
  subscriptionId: 'sub',
  resourceGroup: 'rg',
  tenantId: 'tenant',
  location: 'uksouth',
});
const run = (source: string, ctx = context()) => evaluate(parseExpression(source), ctx);

describe('parsing', () => {
  it('knows an expression from a literal and from an escaped [[ literal', () => {
    expect(isExpression("[parameters('a')]")).toBe(true);
    expect(isExpression('[[not an expression]')).toBe(false);
    expect(isExpression('plain')).toBe(false);
    expect(isExpression('[half')).toBe(false);
  });

  it('parses nested calls, string literals with doubled quotes, numbers, property and index access', () => {
    const tree = parseExpression("[concat(toLower(parameters('name')), 'it''s', string(42), variables('names').vault, variables('list')[1], variables('names')['vault'])]");
    expect(tree).toMatchObject({ type: 'call', name: 'concat' });
    expect(calls(tree).map(({ call }) => call.name)).toEqual(['concat', 'toLower', 'parameters', 'string', 'variables', 'variables', 'variables']);
    expect(run("[concat(toLower(parameters('name')), 'it''s', string(42), variables('names').vault, variables('list')[1], variables('names')['vault'])]")).toBe("esafetyit's42kv-1bkv-1");
  });

  it('allows spaces between tokens, a namespaced user function, and negative numbers', () => {
    expect(parseExpression("[ concat ( 'a' , 'b' ) ]")).toMatchObject({ type: 'call', name: 'concat', args: [{ value: 'a' }, { value: 'b' }] });
    expect(parseExpression("[school.prefix('x')]")).toMatchObject({ type: 'call', namespace: 'school', name: 'prefix' });
    expect(parseExpression('[add(-1, 2)]')).toMatchObject({ args: [{ value: -1 }, { value: 2 }] });
  });

  const refused: Array<[string, RegExp]> = [
    ["[concat('a', 'b']", /unclosed "\(" of concat\( at character/],
    ["[concat('a' 'b')]", /expected "," or "\)" in the arguments of concat\( but found "'"/],
    ["[concat('a)]", /unterminated string literal at character 9/],
    ['[parameters]', /"parameters" must be called/],
    ["[parameters('a').]", /expected a name but the expression ended/],
    ["[variables('a')[0]", /expected "]" but the expression ended|unexpected/],
    ["[concat('a')) ]", /unexpected "\)" after the end of the expression/],
    ["['just a string']", /an expression must be a function call/],
    ['[]', /expected a value but the expression ended/],
  ];

  it.each(refused)('refuses %s, saying where', (source, message) => {
    expect(() => parseExpression(source)).toThrow(ExpressionError);
    expect(() => parseExpression(source)).toThrow(message);
  });
});

describe('evaluating', () => {
  it('evaluates only the branch if() takes', () => {
    expect(run("[if(parameters('flag'), 'yes', parameters('missing'))]")).toBe('yes');
  });

  it('builds resource ids as Azure does, and records them as touched', () => {
    const ctx = context();
    ctx.touched = new Set();
    expect(run("[resourceId('Microsoft.DocumentDB/databaseAccounts/sqlDatabases', 'acc', 'db')]", ctx)).toBe('/subscriptions/sub/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/acc/sqlDatabases/db');
    expect([...ctx.touched]).toEqual(['/subscriptions/sub/resourcegroups/rg/providers/microsoft.documentdb/databaseaccounts/acc/sqldatabases/db']);
    expect(() => run("[resourceId('Microsoft.Web/sites/config', 'site')]")).toThrow(/needs 2 name\(s\), got 1/);
  });

  it('keeps runtime values symbolic unless a resolver stands in for Azure', () => {
    expect(run("[reference(resourceId('Microsoft.Web/sites', 's')).defaultHostName]")).toBeInstanceOf(RuntimeValue);
    const ctx = context();
    ctx.resolve = (_target, path) => (path.join('.') === 'defaultHostName' ? 's.azurewebsites.net' : undefined);
    expect(run("[format('https://{0}/api/messages', reference(resourceId('Microsoft.Web/sites', 's')).defaultHostName)]", ctx)).toBe('https://s.azurewebsites.net/api/messages');
  });

  it('names an undeclared parameter or variable', () => {
    expect(() => run("[parameters('nope')]")).toThrow("parameters('nope') is not a declared parameter");
    expect(() => run("[variables('nope')]")).toThrow("variables('nope') is not a declared variable");
  });

  it('gives uniqueString and guid stable values', () => {
    expect(run("[uniqueString('a', 'b')]")).toBe(run("[uniqueString('a', 'b')]"));
    expect(run("[uniqueString('a', 'b')]")).toMatch(/^[a-z0-9]{13}$/);
    expect(run("[guid('x')]")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
