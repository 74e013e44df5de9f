/** Builders for the Activity JSON that Teams, the Emulator and the playground post to /api/messages. */
import { randomUUID } from 'node:crypto';

export interface ActivityOptions {
  serviceUrl: string;
  userId?: string;
  userName?: string;
  conversationId?: string;
  tenantId?: string;
  channelId?: string;
  conversationType?: 'personal' | 'channel' | 'groupChat';
}

export function messageActivity(options: ActivityOptions & { text?: string; value?: Record<string, unknown> }): Record<string, unknown> {
  const userId = options.userId ?? 'teacher-1';
  return {
    type: 'message',
    id: randomUUID(),
    timestamp: new Date().toISOString(),
    channelId: options.channelId ?? (options.tenantId ? 'msteams' : 'emulator'),
    serviceUrl: options.serviceUrl,
    from: { id: `29:${userId}`, aadObjectId: userId, name: options.userName ?? 'Test Teacher' },
    recipient: { id: '28:bot', name: 'esafety-bot' },
    conversation: { id: options.conversationId ?? `a:conv-${userId}`, conversationType: options.conversationType ?? 'personal', tenantId: options.tenantId },
    channelData: options.tenantId ? { tenant: { id: options.tenantId } } : {},
    ...(options.text !== undefined ? { text: options.text } : {}),
    ...(options.value ? { value: options.value } : {}),
  };
}

/** The Adaptive Card of a captured reply, if it has one. */
export function cardOf(activity: Record<string, any>): Record<string, any> | undefined {
  return activity.attachments?.find((a: any) => a.contentType === 'application/vnd.microsoft.card.adaptive')?.content;
}

/** All TextBlock text in a card, flattened, for assertions. */
export function cardText(card: Record<string, any> | undefined): string {
  const out: string[] = [];
  const walk = (node: any) => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    if (node.type === 'TextBlock') out.push(String(node.text).replace(/\\(.)/g, '$1'));
    if (node.type === 'FactSet') for (const f of node.facts) out.push(`${f.title}: ${f.value}`.replace(/\\(.)/g, '$1'));
    Object.values(node).forEach(walk);
  };
  walk(card);
  return out.join('\n');
}
