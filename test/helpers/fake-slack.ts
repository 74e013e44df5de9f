/**
 * A loopback stand-in for the Slack Web API and for response_url: records every call (method and
 * arguments, form-encoded or JSON; JSON-valued arguments such as `blocks` and `view` parsed) so a
 * test can see what the bot sent. Point the app at it with SLACK_API_URL = `${url}/api/`.
 *
 * Like Slack, it checks Block Kit limits on what it is sent (blocks per message or view, text
 * lengths, buttons, inputs, modal titles) and answers `invalid_blocks` when one is exceeded, so an
 * end-to-end test fails where real Slack would reject the message. Failures can be scripted per
 * method (`failNext`): a 429 with Retry-After, or `{ ok: false, error }`. users.list serves `users`
 * a page at a time (`limit`, at most `usersPageSize`) with Slack's `response_metadata.next_cursor`.
 *
 * chat.postMessage answers a `ts` unique to the message; chat.update of a message it never posted in
 * that channel (or one `deleteMessage` removed) answers `message_not_found`, as Slack does.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  /** The Web API method, or 'response_url' for a POST to a response URL. */
  method: string;
  body: Record<string, any>;
  authorization?: string;
  /** The request path (for response_url calls: which URL). */
  path: string;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** Whether the fake answered it with success (false: a scripted failure or a limit refused). */
  ok?: boolean;
}

export interface ScriptedFailure {
  /** HTTP status; 429 with retryAfter gives Slack's rate-limit answer. Default 200 with `{ ok: false, error }`. */
  status?: number;
  retryAfter?: number;
  error?: string;
  /** Only a call whose arguments match fails (e.g. one person's DM); others pass it by. */
  when?: (body: Record<string, any>) => boolean;
}

export interface FakeSlack {
  url: string;
  calls: SlackCall[];
  /** Resolves once at least `count` calls of `method` have arrived. */
  waitFor(method: string, count?: number, timeoutMs?: number): Promise<SlackCall[]>;
  /** Resolves with the POST to the response URL `responseUrl(id)` once it has arrived. */
  responseTo(id: string, timeoutMs?: number): Promise<SlackCall>;
  /** Calls of one method so far. */
  callsOf(method: string): SlackCall[];
  /** A response_url on this server (`/response/<id>`). */
  responseUrl(id: string): string;
  /** The next call of `method` fails this way (queue several by calling again). */
  failNext(method: string, failure: ScriptedFailure): void;
  /** What oauth.v2.access answers (an install); the default is a workspace install of T0INSTALL. */
  oauthAccess: Record<string, unknown>;
  /** The workspace's members, as users.list returns them (Slack user objects). */
  users: Array<Record<string, unknown>>;
  /** At most this many users a page, whatever `limit` asks (so a test sees the cursor). */
  usersPageSize: number;
  /** Calls refused for breaking a Block Kit limit, with the problems found. */
  rejected: Array<{ method: string; problems: string[] }>;
  /** As if the person deleted the message: chat.update then answers message_not_found. */
  deleteMessage(channel: string, ts: string): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Block Kit limits, as Slack enforces them (https://docs.slack.dev/reference/block-kit)

type Json = Record<string, any>;

function textOf(element: unknown): string | undefined {
  return element && typeof element === 'object' && typeof (element as Json).text === 'string' ? (element as Json).text : undefined;
}

function checkText(problems: string[], where: string, element: unknown, max: number, kinds: string[] = ['plain_text', 'mrkdwn']): void {
  if (!element || typeof element !== 'object') return void problems.push(`${where}: missing text object`);
  const e = element as Json;
  if (!kinds.includes(e.type)) problems.push(`${where}: text type ${e.type} not allowed`);
  const text = textOf(e);
  if (text === undefined || text.length === 0) problems.push(`${where}: empty text`);
  else if (text.length > max) problems.push(`${where}: text is ${text.length} characters (max ${max})`);
}

function checkOptions(problems: string[], where: string, options: unknown, max: number): Json[] {
  if (!Array.isArray(options) || options.length === 0) {
    problems.push(`${where}: needs options`);
    return [];
  }
  if (options.length > max) problems.push(`${where}: ${options.length} options (max ${max})`);
  options.forEach((option: Json, i) => {
    checkText(problems, `${where}.options[${i}]`, option.text, 75);
    if (typeof option.value !== 'string' || option.value.length === 0 || option.value.length > 150) problems.push(`${where}.options[${i}]: value must be 1-150 characters`);
  });
  return options as Json[];
}

function checkElement(problems: string[], where: string, element: Json, inInput: boolean): void {
  if (typeof element.action_id === 'string' && element.action_id.length > 255) problems.push(`${where}: action_id too long`);
  const sameOption = (a: Json, b: Json) => a.value === b.value && textOf(a.text) === textOf(b.text);
  switch (element.type) {
    case 'button':
      checkText(problems, `${where}.text`, element.text, 75, ['plain_text']);
      if (element.value !== undefined && (typeof element.value !== 'string' || element.value.length > 2000)) problems.push(`${where}: value longer than 2000`);
      if (element.url !== undefined && (typeof element.url !== 'string' || element.url.length > 3000)) problems.push(`${where}: url longer than 3000`);
      if (element.style !== undefined && !['primary', 'danger'].includes(element.style)) problems.push(`${where}: bad style`);
      break;
    case 'plain_text_input': {
      if (!inInput) problems.push(`${where}: plain_text_input outside an input block`);
      const max = element.max_length ?? 3000;
      if (max > 3000 || max < 1) problems.push(`${where}: max_length ${max} (1-3000)`);
      if (typeof element.initial_value === 'string' && element.initial_value.length > max) problems.push(`${where}: initial_value longer than max_length`);
      if (element.placeholder) checkText(problems, `${where}.placeholder`, element.placeholder, 150, ['plain_text']);
      break;
    }
    case 'static_select':
    case 'multi_static_select': {
      const all: Json[] = [];
      if (element.option_groups) {
        if (!Array.isArray(element.option_groups) || element.option_groups.length > 100) problems.push(`${where}: more than 100 option groups`);
        (element.option_groups as Json[]).forEach((group, i) => {
          checkText(problems, `${where}.option_groups[${i}].label`, group.label, 75, ['plain_text']);
          all.push(...checkOptions(problems, `${where}.option_groups[${i}]`, group.options, 100));
        });
      } else all.push(...checkOptions(problems, where, element.options, 100));
      if (all.some((o) => o.text?.type !== 'plain_text')) problems.push(`${where}: select options must be plain_text`);
      const initial = element.type === 'static_select' ? (element.initial_option ? [element.initial_option] : []) : (element.initial_options ?? []);
      for (const option of initial) if (!all.some((o) => sameOption(o, option))) problems.push(`${where}: initial option is not one of the options`);
      break;
    }
    case 'checkboxes':
    case 'radio_buttons': {
      const options = checkOptions(problems, where, element.options, 10);
      const initial = element.type === 'radio_buttons' ? (element.initial_option ? [element.initial_option] : []) : (element.initial_options ?? []);
      for (const option of initial) if (!options.some((o) => sameOption(o, option))) problems.push(`${where}: initial option is not one of the options`);
      break;
    }
    case 'datepicker':
      if (element.initial_date !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(element.initial_date)) problems.push(`${where}: initial_date not YYYY-MM-DD`);
      break;
    default:
      problems.push(`${where}: element type ${element.type} not checked by the fake`);
  }
}

/** What Slack would refuse in these blocks, for a message (50 blocks) or a view (100). */
export function blockKitProblems(blocks: unknown, surface: 'message' | 'view'): string[] {
  const problems: string[] = [];
  if (!Array.isArray(blocks)) return ['blocks is not an array'];
  const max = surface === 'message' ? 50 : 100;
  if (blocks.length > max) problems.push(`${blocks.length} blocks (max ${max})`);
  const blockIds = new Set<string>();
  blocks.forEach((block: Json, i) => {
    const where = `blocks[${i}] (${block?.type})`;
    if (typeof block.block_id === 'string') {
      if (block.block_id.length > 255) problems.push(`${where}: block_id too long`);
      if (blockIds.has(block.block_id)) problems.push(`${where}: duplicate block_id ${block.block_id}`);
      blockIds.add(block.block_id);
    }
    switch (block.type) {
      case 'header':
        checkText(problems, where, block.text, 150, ['plain_text']);
        break;
      case 'section':
        if (!block.text && !block.fields) problems.push(`${where}: needs text or fields`);
        if (block.text) checkText(problems, where, block.text, 3000);
        if (block.fields) {
          if (!Array.isArray(block.fields) || block.fields.length > 10) problems.push(`${where}: more than 10 fields`);
          (block.fields as Json[]).forEach((field, j) => checkText(problems, `${where}.fields[${j}]`, field, 2000));
        }
        if (block.accessory) checkElement(problems, `${where}.accessory`, block.accessory, false);
        break;
      case 'context':
        if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 10) problems.push(`${where}: 1-10 elements`);
        (block.elements as Json[]).forEach((element, j) => checkText(problems, `${where}.elements[${j}]`, element, 3000));
        break;
      case 'actions': {
        if (!Array.isArray(block.elements) || block.elements.length === 0 || block.elements.length > 25) problems.push(`${where}: 1-25 elements`);
        const ids = new Set<string>();
        (block.elements as Json[]).forEach((element, j) => {
          checkElement(problems, `${where}.elements[${j}]`, element, false);
          if (element.action_id && ids.has(element.action_id)) problems.push(`${where}: duplicate action_id ${element.action_id}`);
          ids.add(element.action_id);
        });
        break;
      }
      case 'input':
        checkText(problems, `${where}.label`, block.label, 2000, ['plain_text']);
        if (block.hint) checkText(problems, `${where}.hint`, block.hint, 2000, ['plain_text']);
        if (!block.element) problems.push(`${where}: needs an element`);
        else checkElement(problems, `${where}.element`, block.element, true);
        break;
      case 'divider':
        break;
      default:
        problems.push(`${where}: block type not checked by the fake`);
    }
  });
  return problems;
}

export function viewProblems(view: unknown): string[] {
  if (!view || typeof view !== 'object') return ['view is not an object'];
  const v = view as Json;
  const problems = blockKitProblems(v.blocks, 'view');
  if (v.type === 'modal') {
    checkText(problems, 'view.title', v.title, 24, ['plain_text']);
    if (v.submit) checkText(problems, 'view.submit', v.submit, 24, ['plain_text']);
    if (v.close) checkText(problems, 'view.close', v.close, 24, ['plain_text']);
    if ((v.blocks as Json[]).some((b) => b.type === 'input') && !v.submit) problems.push('view: a modal with inputs needs a submit button');
  } else if (v.type !== 'home') problems.push(`view: type ${v.type}`);
  if (typeof v.private_metadata === 'string' && v.private_metadata.length > 3000) problems.push('view: private_metadata longer than 3000');
  if (typeof v.callback_id === 'string' && v.callback_id.length > 255) problems.push('view: callback_id too long');
  return problems;
}

function messageProblems(body: Json): string[] {
  const problems = body.blocks !== undefined ? blockKitProblems(body.blocks, 'message') : [];
  if ((body.text === undefined || body.text === '') && body.blocks === undefined) problems.push('no_text');
  return problems;
}

const parseMaybeJson = (value: string): unknown => {
  if (!/^[[{]/.test(value)) return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
};

// ---------------------------------------------------------------------------------------------

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const rejected: FakeSlack['rejected'] = [];
  const waiters: Array<() => void> = [];
  const failures = new Map<string, ScriptedFailure[]>();
  let views = 0;
  let messages = 0;
  /** Messages posted and not deleted, as `<channel> <ts>`. */
  const posted = new Set<string>();
  const fake: Partial<FakeSlack> = {
    users: [],
    usersPageSize: 200,
    oauthAccess: {
      ok: true,
      app_id: 'A0FAKE',
      authed_user: { id: 'U0INSTALLER' },
      scope: 'chat:write,commands,im:history,im:write,users:read,app_mentions:read',
      token_type: 'bot',
      access_token: 'xoxb-installed-token',
      bot_user_id: 'U0BOT',
      team: { id: 'T0INSTALL', name: 'Installed School' },
      enterprise: null,
      is_enterprise_install: false,
    },
  };

  const answer = (method: string, body: Json): { status: number; payload: Json; headers?: Record<string, string> } => {
    const queued = failures.get(method) ?? [];
    const index = queued.findIndex((failure) => !failure.when || failure.when(body));
    const scripted = index < 0 ? undefined : queued.splice(index, 1)[0];
    if (scripted) {
      if (scripted.status === 429) return { status: 429, payload: { ok: false, error: 'ratelimited' }, headers: scripted.retryAfter !== undefined ? { 'retry-after': String(scripted.retryAfter) } : {} };
      return { status: scripted.status ?? 200, payload: { ok: false, error: scripted.error ?? 'internal_error' } };
    }
    let problems: string[] = [];
    if (method === 'chat.postMessage' || method === 'chat.postEphemeral' || method === 'chat.update' || method === 'response_url') problems = messageProblems(body);
    if (method === 'views.open' || method === 'views.update' || method === 'views.publish' || method === 'views.push') problems = viewProblems(body.view);
    if (problems.length) {
      rejected.push({ method, problems });
      return { status: method === 'response_url' ? 400 : 200, payload: { ok: false, error: 'invalid_blocks', errors: problems } };
    }
    switch (method) {
      case 'conversations.open':
        return { status: 200, payload: { ok: true, channel: { id: `D${String(body.users ?? 'X').replace(/^U/, '')}` } } };
      case 'views.open':
      case 'views.update':
      case 'views.publish':
      case 'views.push':
        views += 1;
        return { status: 200, payload: { ok: true, view: { ...(body.view as Json), id: body.view_id ?? `V${String(views).padStart(6, '0')}`, hash: `hash-${views}` } } };
      case 'chat.postMessage': {
        const ts = `${Math.floor(Date.now() / 1000)}.${String(++messages).padStart(6, '0')}`;
        posted.add(`${body.channel} ${ts}`);
        return { status: 200, payload: { ok: true, channel: body.channel, ts } };
      }
      case 'chat.update':
        if (!posted.has(`${body.channel} ${body.ts}`)) return { status: 200, payload: { ok: false, error: 'message_not_found' } };
        return { status: 200, payload: { ok: true, channel: body.channel, ts: body.ts } };
      case 'auth.test':
        return { status: 200, payload: { ok: true, url: 'https://fake.slack.test/', team: 'Fake', user: 'esafety-bot', team_id: 'T0INSTALL', user_id: 'U0BOT', bot_id: 'B0BOT' } };
      case 'users.list': {
        const start = body.cursor ? Number(Buffer.from(String(body.cursor), 'base64').toString('utf8').replace(/^offset:/, '')) : 0;
        const size = Math.min(Number(body.limit) || 100, fake.usersPageSize!);
        const next = start + size < fake.users!.length ? Buffer.from(`offset:${start + size}`).toString('base64') : '';
        return { status: 200, payload: { ok: true, members: fake.users!.slice(start, start + size), cache_ts: 0, response_metadata: { next_cursor: next } } };
      }
      case 'oauth.v2.access':
        return { status: 200, payload: fake.oauthAccess! };
      default:
        return { status: 200, payload: { ok: true, channel: body.channel, ts: `${Date.now() / 1000}` } };
    }
  };

  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (raw += chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      const api = /^\/api\/([A-Za-z0-9_.]+)/.exec(url);
      const response = /^\/response\/[A-Za-z0-9_.-]+$/.test(url);
      // restify patches http.ServerResponse in this process (writeHead no longer returns `res`): no chaining.
      if (req.method !== 'POST' || (!api && !response)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"ok":false,"error":"unknown_method"}');
        return;
      }
      const type = req.headers['content-type'] ?? '';
      let body: Json = {};
      try {
        if (type.includes('application/json')) body = raw ? JSON.parse(raw) : {};
        else for (const [key, value] of new URLSearchParams(raw)) body[key] = parseMaybeJson(value);
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"ok":false,"error":"invalid_json"}');
        return;
      }
      const method = api ? api[1]! : 'response_url';
      const call: SlackCall = { method, body, authorization: req.headers.authorization, path: url, at: Date.now() };
      calls.push(call);
      const { status, payload, headers } = answer(method, body);
      call.ok = payload.ok === true;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(payload));
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return Object.assign(fake, {
    url: base,
    calls,
    rejected,
    callsOf: (method: string) => calls.filter((call) => call.method === method),
    responseUrl: (id: string) => `${base}/response/${id}`,
    deleteMessage: (channel: string, ts: string) => {
      posted.delete(`${channel} ${ts}`);
    },
    failNext: (method: string, failure: ScriptedFailure) => {
      failures.set(method, [...(failures.get(method) ?? []), failure]);
    },
    waitFor: (method: string, count = 1, timeoutMs = 5000) =>
      new Promise<SlackCall[]>((resolve, reject) => {
        const matching = () => calls.filter((call) => call.method === method);
        const deadline = setTimeout(() => reject(new Error(`expected ${count} ${method} calls, got ${matching().length}`)), timeoutMs);
        const check = () => {
          if (matching().length >= count) {
            clearTimeout(deadline);
            resolve(matching());
          } else waiters.push(check);
        };
        check();
      }),
    responseTo: (id: string, timeoutMs = 5000) =>
      new Promise<SlackCall>((resolve, reject) => {
        const find = () => calls.find((call) => call.method === 'response_url' && call.path === `/response/${id}`);
        const deadline = setTimeout(() => reject(new Error(`no response_url call for ${id}`)), timeoutMs);
        const check = () => {
          const call = find();
          if (call) {
            clearTimeout(deadline);
            resolve(call);
          } else waiters.push(check);
        };
        check();
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  }) as FakeSlack;
}

/** Every piece of text in some blocks (or a view), in order, one per line: what a person would read. */
export function blocksText(blocks: unknown): string {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(walk);
    if (!node || typeof node !== 'object') return;
    const n = node as Json;
    if ((n.type === 'plain_text' || n.type === 'mrkdwn') && typeof n.text === 'string') return void out.push(n.text);
    for (const key of ['title', 'text', 'fields', 'elements', 'label', 'element', 'options', 'blocks', 'accessory']) if (key in n) walk(n[key]);
  };
  walk(blocks);
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Signed requests, as Slack sends them

export interface SignOptions {
  /** Seconds since the epoch; default now. */
  timestamp?: number;
  /** Sign with this secret instead (a wrong signature). */
  secret?: string;
  /** Send this signature header as it is. */
  signature?: string;
}

export interface SlackRequests {
  /** An Events API callback for the workspace (JSON). */
  event(event: Json, options?: SignOptions & { teamId?: string }): Promise<Response>;
  /** A slash command (form-encoded, as Slack sends it). */
  command(fields: Record<string, string>, options?: SignOptions): Promise<Response>;
  /** An interaction (block_actions, view_submission, shortcut...): form-encoded `payload=<json>`. */
  interaction(payload: Json, options?: SignOptions): Promise<Response>;
  /** Any body with a content type, signed. */
  raw(body: string, contentType: string, options?: SignOptions): Promise<Response>;
}

export function signSlack(secret: string, body: string, timestamp: number): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

export function slackRequests(baseUrl: string, signingSecret: string, teamId: string): SlackRequests {
  const raw = (body: string, contentType: string, options: SignOptions = {}) => {
    const timestamp = options.timestamp ?? Math.floor(Date.now() / 1000);
    return fetch(`${baseUrl}/slack/events`, {
      method: 'POST',
      headers: {
        'content-type': contentType,
        'x-slack-request-timestamp': String(timestamp),
        'x-slack-signature': options.signature ?? signSlack(options.secret ?? signingSecret, body, timestamp),
      },
      body,
    });
  };
  let events = 0;
  return {
    raw,
    event: (event, options = {}) =>
      raw(
        JSON.stringify({ type: 'event_callback', team_id: options.teamId ?? teamId, api_app_id: 'A0TEST', event_id: `Ev${++events}${Date.now()}`, event_time: Math.floor(Date.now() / 1000), event }),
        'application/json',
        options,
      ),
    command: (fields, options) => raw(new URLSearchParams({ token: 'legacy', team_id: teamId, team_domain: 'school', api_app_id: 'A0TEST', ...fields }).toString(), 'application/x-www-form-urlencoded', options),
    interaction: (payload, options) => raw(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), 'application/x-www-form-urlencoded', options),
  };
}

/**
 * The settings of a Slack app distributed through OAuth (installed per workspace on
 * /slack/install, a token per workspace), talking to this fake Web API.
 */
export function oauthSlackSettings(slack: Pick<FakeSlack, 'url'>, signingSecret: string): Record<string, string> {
  return {
    SLACK_SIGNING_SECRET: signingSecret,
    SLACK_CLIENT_ID: '1234.5678',
    SLACK_CLIENT_SECRET: randomBytes(16).toString('hex'),
    SLACK_STATE_SECRET: randomBytes(16).toString('hex'),
    SLACK_API_URL: `${slack.url}/api/`,
    PUBLIC_URL: 'https://esafety.school.example',
  };
}

let triggers = 0;

/**
 * A block_actions payload for one button, as Slack sends it: pressed on a message in `channel`
 * (Slack gives a response_url to answer through), or in a view (`view`: a Home tab or a modal).
 */
export function blockActionPayload(
  teamId: string,
  user: string,
  pressed: Json,
  where: { channel?: string; responseUrl?: string; ephemeral?: boolean; view?: Json; trigger?: string },
): Json {
  const base = {
    type: 'block_actions',
    team: { id: teamId, domain: 'school' },
    user: { id: user, username: user.toLowerCase(), team_id: teamId },
    api_app_id: 'A0TEST',
    token: 'legacy',
    trigger_id: where.trigger ?? `trigger-${++triggers}`,
    actions: [{ type: 'button', block_id: 'blk', action_id: pressed.action_id, value: pressed.value, text: pressed.text, action_ts: `${Date.now() / 1000}` }],
  };
  if (where.view) return { ...base, container: { type: 'view', view_id: where.view.id }, view: where.view };
  return {
    ...base,
    container: { type: 'message', message_ts: '1700000000.000100', channel_id: where.channel, is_ephemeral: where.ephemeral ?? false },
    channel: { id: where.channel, name: where.channel?.startsWith('D') ? 'directmessage' : 'general' },
    message: { type: 'message', ts: '1700000000.000100', text: 'a message' },
    response_url: where.responseUrl,
  };
}

/**
 * The `view.state.values` Slack sends for a modal the bot opened, filled in with `answers` (by block
 * id): text as typed, a choice by its option value, several as an array, a toggle as true/false, a
 * date as YYYY-MM-DD. Unanswered inputs come empty, as Slack sends them.
 */
export function viewState(view: Json, answers: Record<string, string | string[] | boolean | undefined>): Record<string, Record<string, Json>> {
  const values: Record<string, Record<string, Json>> = {};
  for (const block of (view.blocks as Json[]).filter((b) => b.type === 'input')) {
    const element = block.element as Json;
    const answer = answers[block.block_id];
    const options: Json[] = element.options ?? (element.option_groups ?? []).flatMap((g: Json) => g.options);
    const pick = (value: string) => {
      const option = options.find((o) => o.value === value);
      if (!option) throw new Error(`${block.block_id}: no option ${value}`);
      return option;
    };
    let state: Json;
    switch (element.type) {
      case 'plain_text_input':
        state = { type: element.type, value: answer === undefined ? null : String(answer) };
        break;
      case 'radio_buttons':
      case 'static_select':
        state = { type: element.type, selected_option: answer === undefined ? null : pick(String(answer)) };
        break;
      case 'checkboxes':
      case 'multi_static_select': {
        const picked = answer === true ? ['true'] : answer === false || answer === undefined ? [] : Array.isArray(answer) ? answer : [String(answer)];
        state = { type: element.type, selected_options: picked.map(pick) };
        break;
      }
      case 'datepicker':
        state = { type: element.type, selected_date: answer === undefined ? null : String(answer) };
        break;
      default:
        throw new Error(`${block.block_id}: element ${element.type}`);
    }
    values[block.block_id] = { [element.action_id]: state };
  }
  return values;
}
