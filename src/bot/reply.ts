/**
 * Neutral replies: text, or a card described once as data. Renderers in src/adapters turn a Card
 * into an Adaptive Card (Teams), Block Kit (Slack) or numbered text (terminal). Nothing here is
 * markup: text is plain and every renderer escapes it for its own surface.
 */
export type Reply = { type: 'text'; text: string } | { type: 'card'; card: Card };

export interface Card {
  /** Stable name of the kind of card ("qa.answer", "incident.form"), for tests and telemetry. */
  kind: string;
  title: string;
  subtitle?: string;
  /** Draws attention (a safeguarding warning, an error). */
  tone?: 'default' | 'attention' | 'good';
  blocks: Block[];
  actions?: Action[];
  /** When a card replaces an earlier one in place (progress), the key it is kept under. */
  updateKey?: string;
}

export type Block =
  | { type: 'text'; text: string; style?: 'normal' | 'heading' | 'muted' | 'attention' }
  | { type: 'quote'; text: string; source?: string }
  | { type: 'facts'; facts: Array<{ title: string; value: string }> }
  | { type: 'list'; items: string[]; ordered?: boolean }
  | { type: 'input'; input: Input };

export type Input =
  | { kind: 'text'; id: string; label: string; multiline?: boolean; required?: boolean; placeholder?: string; value?: string; maxLength?: number; error?: string }
  | { kind: 'choice'; id: string; label: string; choices: Array<{ title: string; value: string }>; multiple?: boolean; required?: boolean; value?: string; error?: string }
  | { kind: 'toggle'; id: string; label: string; value?: boolean; error?: string }
  | { kind: 'date'; id: string; label: string; required?: boolean; value?: string; error?: string };

export type Action =
  /** Sends `data` (with its route) plus the card's inputs back to the bot. */
  | { type: 'submit'; title: string; data: { route: string; [key: string]: unknown }; style?: 'positive' | 'destructive' }
  | { type: 'openUrl'; title: string; url: string };

export const text = (value: string): Reply => ({ type: 'text', text: value });
export const card = (value: Card): Reply => ({ type: 'card', card: value });
