/**
 * Policy acknowledgements: publishing a version to an audience with a due date, recording who
 * opened and accepted exactly which version (by content hash), progress by group, reminders,
 * exemptions and the CSV for inspections. Messages go through the durable queue.
 */
import { AppError, isAppError } from '../../../errors.ts';
import type { Logger } from '../../../logger.ts';
import type { PolicyLibrary } from '../../../policies/library.ts';
import type { JobScheduler, MessageQueue } from '../../../delivery/types.ts';
import type { Store } from '../../../store/store.ts';
import type { AuditLog } from '../../audit.ts';
import type { Directory, UserRecord } from '../../directory.ts';
import { card, type Card } from '../../reply.ts';
import { csvCell } from '../incidents/reports.ts';
import { diffSections, type PolicyDiff } from './diff.ts';
import { policyLinkUrl } from './links.ts';

export const staffGroups = ['teaching', 'support', 'leadership', 'governors'] as const;
export type StaffGroup = (typeof staffGroups)[number];

export interface StaffProfile {
  groups: StaffGroup[];
  /** Groups this person leads: they get the after-due summary for their own staff. */
  leads: StaffGroup[];
}

export interface Campaign {
  id: string;
  docId: string;
  title: string;
  hash: string;
  version: string;
  audience: 'all' | StaffGroup[];
  due: string;
  publishedBy: string;
  publishedAt: string;
  diff: PolicyDiff;
  recipients: string[];
  exempt: string[];
  summarySent?: boolean;
}

export interface Acknowledgement {
  docId: string;
  hash: string;
  version: string;
  userId: string;
  at: string;
  platform: string;
}

const profileKey = (school: string, userId: string) => ({ kind: 'staff-profile', school, id: userId });
const campaignKey = (school: string, id: string) => ({ kind: 'ack-campaign', school, id });
const openKey = (school: string, docId: string, hash: string, userId: string) => ({ kind: 'ack-open', school, id: `${docId}@${hash}:${userId}` });
const ackKey = (school: string, docId: string, hash: string, userId: string) => ({ kind: 'ack', school, id: `${docId}@${hash}:${userId}` });
export const campaignIdFor = (docId: string, hash: string) => `camp-${docId}-${hash.slice(0, 12)}`;

export interface AcknowledgementDeps {
  store: Store;
  directory: Directory;
  library: PolicyLibrary;
  queue: MessageQueue;
  jobs?: JobScheduler;
  audit: AuditLog;
  log: Logger;
  publicUrl: string;
  linkSecret: string;
  /** Days between automatic reminders until the due date. */
  reminderEveryDays?: number;
}

export class AcknowledgementService {
  constructor(private readonly deps: AcknowledgementDeps) {}

  async profile(school: string, userId: string): Promise<StaffProfile> {
    return (await this.deps.store.get<StaffProfile>(profileKey(school, userId)))?.data ?? { groups: [], leads: [] };
  }

  async setProfile(school: string, userId: string, change: (p: StaffProfile) => StaffProfile): Promise<StaffProfile> {
    const current = await this.deps.store.get<StaffProfile>(profileKey(school, userId));
    const next = change(current?.data ?? { groups: [], leads: [] });
    await this.deps.store.upsert(profileKey(school, userId), next);
    return next;
  }

  /** Everyone in the audience the bot can reach: all known staff, or the members of the groups. */
  async audienceMembers(school: string, audience: Campaign['audience']): Promise<UserRecord[]> {
    // People a roster marked as left keep their records (roles, past acceptances) but are not asked.
    const users = (await this.deps.directory.listUsers(school)).filter((u) => !u.leftAt);
    if (audience === 'all') return users;
    const profiles = new Map((await this.deps.store.list<StaffProfile>('staff-profile', school)).map((r) => [r.id, r.data]));
    return users.filter((u) => profiles.get(u.id)?.groups.some((g) => audience.includes(g)));
  }

  link(school: string, campaign: Pick<Campaign, 'docId' | 'hash'>, userId: string): string {
    return policyLinkUrl(this.deps.publicUrl, this.deps.linkSecret, { school, docId: campaign.docId, hash: campaign.hash, userId });
  }

  requestCard(school: string, campaign: Campaign, userId: string, reminder = false): Card {
    const { diff } = campaign;
    const changes = [
      ...diff.added.map((h) => `Added: ${h}`),
      ...diff.changed.map((h) => `Changed: ${h}`),
      ...diff.removed.map((h) => `Removed: ${h}`),
    ];
    return {
      kind: 'ack.request',
      title: `${reminder ? 'Reminder: please read and accept' : 'Please read and accept'}: ${campaign.title}`,
      subtitle: `Version ${campaign.version} · due ${campaign.due}`,
      blocks: [
        { type: 'text', text: changes.length ? 'What changed since the last version:' : 'The policy has been republished.' },
        ...(changes.length ? [{ type: 'list' as const, items: changes.slice(0, 25) }] : []),
        ...(changes.length > 25 ? [{ type: 'text' as const, style: 'muted' as const, text: `and ${changes.length - 25} more changes.` }] : []),
        { type: 'text', style: 'muted', text: 'Open the policy first; then "I have read and accept" records your acceptance of exactly this version.' },
      ],
      actions: [
        { type: 'openUrl', title: 'Read the policy', url: this.link(school, campaign, userId) },
        { type: 'submit', title: 'I have read and accept', style: 'positive', data: { route: 'ack.accept', campaignId: campaign.id } },
      ],
    };
  }

  /**
   * The current versions this person was asked to accept and has not (nor been exempted from), newest
   * request first; what "my acknowledgements" and Slack's Home tab show.
   */
  async pendingFor(school: string, userId: string): Promise<Campaign[]> {
    const campaigns = (await this.deps.store.list<Campaign>('ack-campaign', school)).map((r) => r.data).filter((c) => c.recipients.includes(userId) && !c.exempt.includes(userId));
    if (!campaigns.length) return [];
    const current = new Map((await this.deps.library.list(school)).map((e) => [e.docId, e.hash]));
    const pending: Campaign[] = [];
    for (const c of campaigns) {
      if (current.get(c.docId) !== c.hash) continue;
      if (!(await this.deps.store.get(ackKey(school, c.docId, c.hash, userId)))) pending.push(c);
    }
    return pending.sort((a, b) => b.publishedAt.localeCompare(a.publishedAt));
  }

  /** The request cards for what is pending (at most `limit`), each with its signed link and accept button. */
  async pendingCards(school: string, userId: string, limit = 5): Promise<Card[]> {
    return (await this.pendingFor(school, userId)).slice(0, limit).map((c) => this.requestCard(school, c, userId));
  }

  /** Publishes the current version of a document: one campaign per version, one message per person. */
  async publish(school: string, input: { docId: string; audience: Campaign['audience']; due: string; by: string }): Promise<{ campaign: Campaign; queued: number }> {
    const entries = await this.deps.library.list(school);
    const entry = entries.find((e) => e.docId === input.docId);
    if (!entry) throw new AppError('not_found', `No policy "${input.docId}". Policies: ${entries.map((e) => e.docId).join(', ')}.`);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(input.due) || Number.isNaN(new Date(input.due).getTime())) throw new AppError('validation_failed', 'The due date must look like 2026-12-31.');
    if (new Date(`${input.due}T23:59:59Z`).getTime() < Date.now()) throw new AppError('validation_failed', 'The due date is in the past.');
    const current = await this.deps.library.getVersion(school, entry.docId, entry.hash);
    const previousHash = entry.history.length > 1 ? entry.history[entry.history.length - 2]!.hash : undefined;
    const previous = previousHash ? await this.deps.library.getVersion(school, entry.docId, previousHash) : undefined;
    const members = await this.audienceMembers(school, input.audience);
    const id = campaignIdFor(entry.docId, entry.hash);
    const existing = await this.deps.store.get<Campaign>(campaignKey(school, id));
    const campaign: Campaign = {
      id,
      docId: entry.docId,
      title: entry.title,
      hash: entry.hash,
      version: entry.version,
      audience: input.audience,
      due: input.due,
      publishedBy: input.by,
      publishedAt: new Date().toISOString(),
      diff: diffSections(previous?.sections, current?.sections ?? []),
      recipients: [...new Set([...(existing?.data.recipients ?? []), ...members.map((m) => m.id)])],
      exempt: existing?.data.exempt ?? [],
    };
    if (existing) await this.deps.store.replace(campaignKey(school, id), campaign, existing.etag);
    else await this.deps.store.create(campaignKey(school, id), campaign);
    // Re-publishing asks only those not yet asked; nobody who accepted is asked again.
    const toAsk = [];
    for (const member of members) {
      if (existing?.data.recipients.includes(member.id)) continue;
      if (campaign.exempt.includes(member.id)) continue;
      toAsk.push({ recipient: member.id, replies: [card(this.requestCard(school, campaign, member.id))] });
    }
    const { count } = toAsk.length ? await this.deps.queue.enqueue(school, toAsk, { broadcastId: `${id}-publish-${Date.now()}` }) : { count: 0 };
    await this.deps.audit.record(school, { actor: input.by, action: 'ack.publish', target: id, outcome: 'ok', detail: `${count} asked, due ${input.due}` });
    await this.#scheduleReminders(school, campaign);
    this.deps.log.info({ campaign: id, queued: count }, 'policy published for acknowledgement');
    return { campaign, queued: count };
  }

  async #scheduleReminders(school: string, campaign: Campaign): Promise<void> {
    if (!this.deps.jobs) return;
    const every = (this.deps.reminderEveryDays ?? 3) * 86_400_000;
    const next = new Date(Math.min(Date.now() + every, new Date(`${campaign.due}T09:00:00Z`).getTime() + 86_400_000));
    await this.deps.jobs.schedule({ school, id: `ack-reminder-${campaign.id}`, kind: 'ack.reminder', runAt: next, payload: { campaignId: campaign.id } });
  }

  async campaign(school: string, id: string): Promise<Campaign | undefined> {
    return (await this.deps.store.get<Campaign>(campaignKey(school, id)))?.data;
  }

  /** The campaign of the current version of a document, if it was published. */
  async currentCampaign(school: string, docId: string): Promise<Campaign | undefined> {
    const entry = (await this.deps.library.list(school)).find((e) => e.docId === docId);
    return entry ? this.campaign(school, campaignIdFor(entry.docId, entry.hash)) : undefined;
  }

  async recordOpened(school: string, docId: string, hash: string, userId: string): Promise<void> {
    try {
      await this.deps.store.create(openKey(school, docId, hash, userId), { at: new Date().toISOString() });
    } catch (error) {
      if (!isAppError(error, 'conflict')) throw error;
    }
  }

  /** Accepts exactly the campaign's version; idempotent; refused before the document was opened. */
  async accept(school: string, campaignId: string, user: { id: string; platform: string }): Promise<{ status: 'accepted' | 'already' | 'not-opened' | 'superseded' | 'unknown'; at?: string; campaign?: Campaign }> {
    const campaign = await this.campaign(school, campaignId);
    if (!campaign) return { status: 'unknown' };
    const entry = (await this.deps.library.list(school)).find((e) => e.docId === campaign.docId);
    if (!entry || entry.hash !== campaign.hash) return { status: 'superseded', campaign };
    const existing = await this.deps.store.get<Acknowledgement>(ackKey(school, campaign.docId, campaign.hash, user.id));
    if (existing) return { status: 'already', at: existing.data.at, campaign };
    const opened = await this.deps.store.get(openKey(school, campaign.docId, campaign.hash, user.id));
    if (!opened) return { status: 'not-opened', campaign };
    const ack: Acknowledgement = { docId: campaign.docId, hash: campaign.hash, version: campaign.version, userId: user.id, at: new Date().toISOString(), platform: user.platform };
    try {
      await this.deps.store.create(ackKey(school, campaign.docId, campaign.hash, user.id), ack);
    } catch (error) {
      if (!isAppError(error, 'conflict')) throw error;
      const winner = await this.deps.store.get<Acknowledgement>(ackKey(school, campaign.docId, campaign.hash, user.id));
      return { status: 'already', at: winner?.data.at, campaign };
    }
    return { status: 'accepted', at: ack.at, campaign };
  }

  async acknowledgements(school: string, campaign: Pick<Campaign, 'docId' | 'hash'>): Promise<Acknowledgement[]> {
    return (await this.deps.store.list<Acknowledgement>('ack', school, { idPrefix: `${campaign.docId}@${campaign.hash}:` })).map((r) => r.data);
  }

  /** Acknowledged x of y, overall and by group; exempt people are left out of y. */
  async progress(school: string, campaign: Campaign) {
    const acks = new Set((await this.acknowledgements(school, campaign)).map((a) => a.userId));
    const profiles = new Map((await this.deps.store.list<StaffProfile>('staff-profile', school)).map((r) => [r.id, r.data]));
    const expected = campaign.recipients.filter((id) => !campaign.exempt.includes(id));
    const byGroup = new Map<string, { done: number; total: number }>();
    for (const id of expected) {
      const groups = profiles.get(id)?.groups ?? [];
      for (const group of groups.length ? groups : ['no group']) {
        const row = byGroup.get(group) ?? { done: 0, total: 0 };
        row.total++;
        if (acks.has(id)) row.done++;
        byGroup.set(group, row);
      }
    }
    return { done: expected.filter((id) => acks.has(id)).length, total: expected.length, byGroup, outstanding: expected.filter((id) => !acks.has(id)) };
  }

  /** Reminds everyone who has not accepted; returns how many were queued. */
  async remind(school: string, campaign: Campaign): Promise<number> {
    const { outstanding } = await this.progress(school, campaign);
    if (!outstanding.length) return 0;
    const { count } = await this.deps.queue.enqueue(
      school,
      outstanding.map((id) => ({ recipient: id, replies: [card(this.requestCard(school, campaign, id, true))] })),
      { broadcastId: `${campaign.id}-reminder-${Date.now()}` },
    );
    return count;
  }

  async exempt(school: string, campaignId: string, userId: string): Promise<void> {
    const record = await this.deps.store.get<Campaign>(campaignKey(school, campaignId));
    if (!record) throw new AppError('not_found', 'That policy has not been published for acknowledgement.');
    if (record.data.exempt.includes(userId)) return;
    await this.deps.store.replace(campaignKey(school, campaignId), { ...record.data, exempt: [...record.data.exempt, userId] }, record.etag);
  }

  /** After the due date: a summary to the coordinators, and to each group's leaders for their own staff. */
  async sendDueSummary(school: string, campaign: Campaign): Promise<void> {
    const progress = await this.progress(school, campaign);
    const names = new Map((await this.deps.directory.listUsers(school)).map((u) => [u.id, u.name ?? u.id]));
    const profiles = new Map((await this.deps.store.list<StaffProfile>('staff-profile', school)).map((r) => [r.id, r.data]));
    const coordinators = await this.deps.directory.usersWithRole(school, ['coordinator']);
    // New messages, not updates of the coordinator's live progress card: a summary should be noticed.
    const messages = coordinators.map((c) => ({ recipient: c.id, replies: [card({ ...this.progressCard(campaign, progress, names, 'everyone'), updateKey: undefined })] }));
    for (const [leaderId, profile] of profiles) {
      for (const group of profile.leads) {
        const mine = progress.outstanding.filter((id) => profiles.get(id)?.groups.includes(group));
        messages.push({ recipient: leaderId, replies: [card({ ...this.progressCard(campaign, { ...progress, outstanding: mine }, names, group), kind: 'ack.group-summary', updateKey: undefined })] });
      }
    }
    if (messages.length) await this.deps.queue.enqueue(school, messages, { broadcastId: `${campaign.id}-summary` });
  }

  progressCard(campaign: Campaign, progress: Awaited<ReturnType<AcknowledgementService['progress']>>, names: Map<string, string>, scope: string): Card {
    return {
      kind: 'ack.progress',
      title: `${campaign.title}: acknowledged ${progress.done} of ${progress.total}`,
      subtitle: `Version ${campaign.version} · due ${campaign.due} · ${scope}`,
      updateKey: `ack-progress-${campaign.id}`,
      blocks: [
        { type: 'facts', facts: [...progress.byGroup.entries()].map(([group, row]) => ({ title: group, value: `${row.done} of ${row.total}` })) },
        ...(progress.outstanding.length
          ? [{ type: 'text' as const, style: 'heading' as const, text: 'Not yet accepted' }, { type: 'list' as const, items: progress.outstanding.slice(0, 50).map((id) => names.get(id) ?? id) }]
          : [{ type: 'text' as const, text: 'Everyone has accepted.' }]),
        ...(campaign.exempt.length ? [{ type: 'text' as const, style: 'muted' as const, text: `${campaign.exempt.length} exempt (for example on leave).` }] : []),
      ],
      actions: progress.outstanding.length ? [{ type: 'submit', title: 'Remind them now', data: { route: 'ack.remind', campaignId: campaign.id } }] : [],
    };
  }

  async csv(school: string, campaign: Campaign): Promise<string> {
    const acks = new Map((await this.acknowledgements(school, campaign)).map((a) => [a.userId, a]));
    const names = new Map((await this.deps.directory.listUsers(school)).map((u) => [u.id, u.name ?? '']));
    const rows = [['document', 'version', 'content_hash', 'user_id', 'name', 'status', 'accepted_at', 'platform'].map(csvCell).join(',')];
    for (const id of campaign.recipients) {
      const ack = acks.get(id);
      const status = ack ? 'accepted' : campaign.exempt.includes(id) ? 'exempt' : 'outstanding';
      rows.push([campaign.docId, campaign.version, campaign.hash, id, names.get(id), status, ack?.at, ack?.platform].map(csvCell).join(','));
    }
    return rows.join('\n') + '\n';
  }

  registerJobs(): void {
    this.deps.jobs?.register<{ campaignId: string }>('ack.reminder', async (job) => {
      const campaign = await this.campaign(job.school, job.payload.campaignId);
      if (!campaign) return;
      const entry = (await this.deps.library.list(job.school)).find((e) => e.docId === campaign.docId);
      if (!entry || entry.hash !== campaign.hash) return; // superseded: the new version's campaign takes over
      if (Date.now() > new Date(`${campaign.due}T23:59:59Z`).getTime()) {
        if (!campaign.summarySent) {
          await this.sendDueSummary(job.school, campaign);
          const record = await this.deps.store.get<Campaign>(campaignKey(job.school, campaign.id));
          if (record) await this.deps.store.replace(campaignKey(job.school, campaign.id), { ...record.data, summarySent: true }, record.etag);
        }
        return;
      }
      await this.remind(job.school, campaign);
      await this.#scheduleReminders(job.school, campaign);
    });
  }
}
