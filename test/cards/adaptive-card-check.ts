/**
 * Checks one rendered Adaptive Card the way Teams will meet it, with the official adaptivecards
 * library (its bundled build: the package's lib/ does not load in plain Node):
 *
 * - valid for Adaptive Cards 1.5: every element, action, property and enumerated value exists in
 *   the library's schema and was introduced in 1.5 or earlier (the library itself ignores unknown
 *   properties silently, so this walk is ours);
 * - parsed with no warning or error (SerializationContext events) and validated (validateProperties);
 * - the Teams message carrying it is under Teams' size limit.
 *
 * Every problem names the JSON path of the bad field (`body[2].facts[0].title`).
 */
import AC from 'adaptivecards/dist/adaptivecards.js';

type Json = Record<string, unknown>;
type SerializableObject = InstanceType<typeof AC.SerializableObject>;
type PropertyDefinition = InstanceType<typeof AC.PropertyDefinition>;

/** Teams' limit for one message (activity and card together) is about 28 KB. */
export const TEAMS_MESSAGE_LIMIT_BYTES = 28 * 1024;
export const TARGET_VERSION = AC.Versions.v1_5;

/**
 * Keys that carry children the library parses itself (not through a schema property), and the
 * Teams host extension at the root. Their contents are still checked: children as elements and
 * actions, msteams against the shape Teams documents.
 */
const STRUCTURAL_KEYS: Record<string, string[]> = {
  AdaptiveCard: ['body', 'actions', 'msteams', 'fallback'],
  Container: ['items', 'fallback'],
  Column: ['items', 'fallback'],
  ColumnSet: ['columns', 'fallback'],
  ActionSet: ['actions', 'fallback'],
  'Action.ShowCard': ['card'],
};
const ANY_ELEMENT_KEYS = ['fallback'];

/** `body[2].facts[0]` for every object and array in the card, so a problem can say where it is. */
function pathsOf(root: unknown): Map<object, string> {
  const paths = new Map<object, string>();
  const walk = (node: unknown, at: string) => {
    if (!node || typeof node !== 'object') return;
    paths.set(node as object, at || '(card)');
    if (Array.isArray(node)) node.forEach((child, i) => walk(child, `${at}[${i}]`));
    else for (const [key, child] of Object.entries(node)) walk(child, at ? `${at}.${key}` : key);
  };
  walk(root, '');
  return paths;
}

const join = (at: string, key: string) => (at === '(card)' ? key : `${at}.${key}`);

function schemaProperties(object: SerializableObject): Map<string, PropertyDefinition> {
  const schema = object.getSchema();
  const out = new Map<string, PropertyDefinition>();
  for (let i = 0; i < schema.getCount(); i++) {
    const property = schema.getItemAt(i);
    out.set(property.name, property);
  }
  return out;
}

const newer = (version: InstanceType<typeof AC.Version> | undefined) => version !== undefined && version.compareTo(TARGET_VERSION) > 0;

/** Is this value of an enumerated property newer than 1.5 (or not a value at all)? */
function checkValue(property: PropertyDefinition, value: unknown, at: string, problems: string[]): void {
  const versioned = (property as { values?: Array<{ value: unknown; targetVersion?: InstanceType<typeof AC.Version> }> }).values;
  if (!versioned || typeof value !== 'string') return;
  if (property instanceof AC.EnumProperty) {
    const enumType = (property as unknown as { enumType: Record<string, number | string> }).enumType;
    const name = Object.keys(enumType).find((key) => isNaN(Number(key)) && key.toLowerCase() === value.toLowerCase());
    const entry = name === undefined ? undefined : versioned.find((v) => v.value === enumType[name]);
    if (!entry) problems.push(`${at}: "${value}" is not a value of ${property.name}`);
    else if (newer(entry.targetVersion)) problems.push(`${at}: "${value}" needs Adaptive Cards ${entry.targetVersion} (Teams renders ${TARGET_VERSION})`);
  } else if (property instanceof AC.ValueSetProperty) {
    const entry = versioned.find((v) => typeof v.value === 'string' && v.value.toLowerCase() === value.toLowerCase());
    if (!entry) problems.push(`${at}: "${value}" is not a value of ${property.name}`);
    else if (newer(entry.targetVersion)) problems.push(`${at}: "${value}" needs Adaptive Cards ${entry.targetVersion} (Teams renders ${TARGET_VERSION})`);
  }
}

/** Every key of `source` must be a property of `object`'s schema (or structural) known in 1.5. */
function checkObject(object: SerializableObject, typeName: string, source: Json, at: string, problems: string[]): void {
  const properties = schemaProperties(object);
  const structural = [...(STRUCTURAL_KEYS[typeName] ?? []), ...(object instanceof AC.CardElement ? ANY_ELEMENT_KEYS : [])];
  for (const [key, value] of Object.entries(source)) {
    const where = join(at, key);
    if (structural.includes(key)) continue;
    const property = properties.get(key);
    if (!property) {
      problems.push(`${where}: ${typeName} has no property "${key}" in Adaptive Cards ${TARGET_VERSION}`);
      continue;
    }
    if (newer(property.targetVersion)) problems.push(`${where}: "${key}" needs Adaptive Cards ${property.targetVersion} (Teams renders ${TARGET_VERSION})`);
    checkValue(property, value, where, problems);
    // Nested objects with a schema of their own: facts, choices, background images, refresh.
    const objectType = (property as { objectType?: new () => SerializableObject }).objectType;
    if (objectType && value && typeof value === 'object') {
      const items = Array.isArray(value) ? value.map((item, i) => [item, `${where}[${i}]`] as const) : [[value, where] as const];
      for (const [item, itemAt] of items) {
        if (item && typeof item === 'object' && !Array.isArray(item)) checkObject(new objectType(), objectType.name, item as Json, itemAt, problems);
      }
    }
  }
}

/** The msteams root extension: only the keys Teams documents. */
function checkTeamsExtension(value: unknown, problems: string[]): void {
  if (value === undefined) return;
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    problems.push('msteams: must be an object');
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key === 'width') {
      if (v !== 'Full') problems.push(`msteams.width: "${String(v)}" is not a width Teams knows (only "Full")`);
    } else if (key !== 'entities' && key !== 'allowExpand') problems.push(`msteams.${key}: not a property Teams reads on a card`);
  }
}

export interface CardCheck {
  problems: string[];
  /** Bytes of the Teams message carrying the card. */
  messageBytes: number;
}

/**
 * Problems with a rendered card, each `path: what is wrong`. `messageBytes` is measured on
 * `message` (the activity that carries the card) when given, else on the card with a generous
 * allowance for the activity around it.
 */
export function checkAdaptiveCard(rendered: Json, message?: unknown): CardCheck {
  // What Teams receives: the JSON text (undefined values dropped).
  const card = JSON.parse(JSON.stringify(rendered)) as Json;
  const problems: string[] = [];
  const paths = pathsOf(card);
  const pathOf = (source: unknown) => (source && typeof source === 'object' ? paths.get(source) : undefined) ?? '(card)';

  if (card.type !== 'AdaptiveCard') problems.push(`type: must be "AdaptiveCard" (got ${JSON.stringify(card.type)})`);
  if (card.version !== TARGET_VERSION.toString()) problems.push(`version: must be "${TARGET_VERSION}" (what Teams renders), got ${JSON.stringify(card.version)}`);

  const context = new AC.SerializationContext(TARGET_VERSION);
  const parsedFrom = new Map<SerializableObject, Json>();
  context.onParseElement = (element, source) => parsedFrom.set(element, source as Json);
  context.onParseAction = (action, source) => parsedFrom.set(action, source as Json);
  const parsed = new AC.AdaptiveCard();
  parsed.parse(card, context);
  parsedFrom.set(parsed, card);
  const where = (object: SerializableObject | undefined) => (object ? pathOf(parsedFrom.get(object)) : '(card)');

  for (let i = 0; i < context.eventCount; i++) {
    const event = context.getEventAt(i);
    problems.push(`${where(event.source)}: parse ${AC.ValidationEvent[event.event]}: ${event.message}`);
  }
  for (const event of parsed.validateProperties().validationEvents) {
    problems.push(`${where(event.source)}: validation ${AC.ValidationEvent[event.event]}: ${event.message}`);
  }

  // Every element and action the library built, against its own schema at 1.5.
  for (const [object, source] of parsedFrom) {
    const typeName = object === parsed ? 'AdaptiveCard' : String(source.type);
    checkObject(object, typeName, source, pathOf(source), problems);
  }
  // Element and action types the library refused or would take only from a later version, named by
  // path (the library's own event names only the parent).
  const walkTypes = (node: unknown, at: string, kind: 'element' | 'action') => {
    if (!Array.isArray(node)) return;
    node.forEach((child, i) => {
      if (!child || typeof child !== 'object' || typeof (child as Json).type !== 'string') return;
      const typeName = (child as Json).type as string;
      const here = `${at}[${i}]`;
      const registration = kind === 'action' ? context.actionRegistry.findByName(typeName) : context.elementRegistry.findByName(typeName);
      if (!registration) problems.push(`${here}: "${typeName}" is not an Adaptive Cards ${kind} type`);
      else if (newer(registration.schemaVersion)) problems.push(`${here}: ${typeName} needs Adaptive Cards ${registration.schemaVersion} (Teams renders ${TARGET_VERSION})`);
      const item = child as Json;
      walkTypes(item.items, `${here}.items`, 'element');
      walkTypes(item.columns, `${here}.columns`, 'element');
      walkTypes(item.actions, `${here}.actions`, 'action');
    });
  };
  walkTypes(card.body, 'body', 'element');
  walkTypes(card.actions, 'actions', 'action');
  checkTeamsExtension(card.msteams, problems);

  const messageBytes = Buffer.byteLength(JSON.stringify(message ?? card));
  if (messageBytes > TEAMS_MESSAGE_LIMIT_BYTES) {
    problems.push(`(message): ${messageBytes} bytes as a Teams message, over the ${TEAMS_MESSAGE_LIMIT_BYTES}-byte limit`);
  }
  return { problems: [...new Set(problems)], messageBytes };
}
