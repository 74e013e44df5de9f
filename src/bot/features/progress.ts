/**
 * Live progress for the coordinator: the progress card of an alert (`alert status ID`) or of a
 * policy acknowledgement (`acks status DOC`) keeps itself up to date while the sending or the
 * acknowledging goes on. The card carries an updateKey, so each new version replaces the last one
 * in the coordinator's chat (src/delivery/message-refs.ts); a durable job re-renders it every
 * `refreshMs` and, when the figures changed, sends it to the coordinator through the queue (the
 * outbox, within the platform's limits). The job stops once nothing more can change (everyone
 * reached and, for a critical alert or a policy, everyone acknowledged) or after `maxMs`. "Refresh"
 * on the card re-renders it at once, in place.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { JobScheduler, MessageQueue } from '../../delivery/types.ts';
import type { Logger } from '../../logger.ts';
import type { Store } from '../../store/store.ts';
import type { AuditLog } from '../audit.ts';
import type { Directory } from '../directory.ts';
import { card, text, type Action, type Card, type Reply } from '../reply.ts';
import { effectiveRoles, hasPermission, requirePermission, type Permission } from '../roles.ts';
import type { Route } from '../router.ts';
import type { Turn } from '../turn.ts';
import type { AcknowledgementService } from './acknowledgements/service.ts';
import { alertKey, type AlertRecord } from './acknowledgements/routes.ts';

export interface ProgressOptions {
  /** How often a watched progress card is re-rendered (and sent when it changed). */
  refreshMs: number;
  /** How long after the coordinator last asked the card is kept up to date at most. */
  maxMs: number;
}

const DEFAULT_PROGRESS_OPTIONS: ProgressOptions = { refreshMs: 15_000, maxMs: 2 * 60 * 60_000 };

const REFRESH_JOB_KIND = 'progress.refresh';
const REFRESH_ROUTE = 'progress.refresh';

const subjectSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('alert'), alertId: z.string().min(1).max(200) }),
  z.object({ type: z.literal('ack'), campaignId: z.string().min(1).max(200) }),
]);
export type ProgressSubject = z.infer<typeof subjectSchema>;

interface WatchPayload {
  userId: string;
  subject: ProgressSubject;
  /** ISO time after which the card is no longer refreshed. */
  until: string;
  /** Digest of the version the coordinator has: an unchanged card is not sent again. */
  shown: string;
}

export interface Rendered {
  card: Card;
  /** Nothing more can change: no refresh needed. */
  finished: boolean;
}

export interface LiveProgressDeps {
  store: Store;
  directory: Directory;
  queue: MessageQueue;
  jobs?: JobScheduler;
  acks: AcknowledgementService;
  audit: AuditLog;
  log: Logger;
  progress?: Partial<ProgressOptions>;
}

const permissionFor = (subject: ProgressSubject): Permission => (subject.type === 'alert' ? 'alerts.broadcast' : 'policies.publish');
const digest = (value: string) => createHash('sha256').update(value).digest('base64url');
const cardDigest = (value: Card) => digest(JSON.stringify(value));

export class LiveProgress {
  readonly options: ProgressOptions;
  constructor(private readonly deps: LiveProgressDeps) {
    this.options = { ...DEFAULT_PROGRESS_OPTIONS, ...deps.progress };
  }

  /** The progress card as it is now; undefined when the alert or the campaign does not exist. */
  async render(school: string, subject: ProgressSubject): Promise<Rendered | undefined> {
    return subject.type === 'alert' ? this.#renderAlert(school, subject.alertId) : this.#renderAcknowledgements(school, subject.campaignId);
  }

  async #renderAlert(school: string, alertId: string): Promise<Rendered | undefined> {
    const { store, queue } = this.deps;
    const record = await store.get<AlertRecord>(alertKey(school, alertId));
    if (!record) return undefined;
    const alert = record.data;
    const progress = await queue.progress(school, alert.broadcastId);
    const read = alert.severity === 'critical' ? (await store.list('alert-read', school, { idPrefix: `${alertId}:` })).length : undefined;
    const waiting = progress.pending + progress.inflight;
    return {
      finished: waiting === 0 && (read === undefined || read >= progress.delivered),
      card: {
        kind: 'alert.progress',
        title: `Alert ${alertId}`,
        updateKey: `alert-progress-${alertId}`,
        blocks: [
          { type: 'facts', facts: [
            { title: 'Delivered', value: `${progress.delivered} of ${progress.total}` },
            { title: 'Waiting', value: String(waiting) },
            { title: 'Failed', value: String(progress.failed) },
            ...(read !== undefined ? [{ title: 'Read and acknowledged', value: String(read) }] : []),
          ] },
          ...(progress.failures.length ? [{ type: 'list' as const, items: progress.failures.slice(0, 20).map((f) => `${f.recipient}: ${f.reason}`) }] : []),
        ],
        actions: [refreshAction({ type: 'alert', alertId })],
      },
    };
  }

  async #renderAcknowledgements(school: string, campaignId: string): Promise<Rendered | undefined> {
    const { acks, directory } = this.deps;
    const campaign = await acks.campaign(school, campaignId);
    if (!campaign) return undefined;
    const progress = await acks.progress(school, campaign);
    const names = new Map((await directory.listUsers(school)).map((u) => [u.id, u.name ?? u.id]));
    const progressCard = acks.progressCard(campaign, progress, names, 'everyone');
    return {
      finished: progress.done >= progress.total,
      card: { ...progressCard, actions: [...(progressCard.actions ?? []), refreshAction({ type: 'ack', campaignId })] },
    };
  }

  /**
   * The card for the coordinator's request (`alert status`, `acks status`, Refresh), and in their
   * own chat the job that keeps it up to date from now on.
   */
  async show(turn: Turn, subject: ProgressSubject): Promise<Reply[]> {
    const rendered = await this.render(turn.school.id, subject);
    if (!rendered) return [text(subject.type === 'alert' ? `No alert ${subject.alertId}.` : 'That policy version is not published for acknowledgement any more.')];
    // The terminal chat runs no jobs and cannot be reached by a server's: it prints the card when asked.
    const reachable = turn.inbound.conversation.kind === 'personal' && turn.inbound.platform !== 'terminal';
    if (!rendered.finished && reachable) await this.watch(turn.school.id, turn.user.id, subject, rendered.card);
    return [card(rendered.card)];
  }

  /** Refreshes `userId`'s card every refreshMs, from now until maxMs from now (asking again extends it). */
  async watch(school: string, userId: string, subject: ProgressSubject, shown: Card): Promise<void> {
    const { jobs } = this.deps;
    if (!jobs) return;
    const now = Date.now();
    const payload: WatchPayload = { userId, subject, until: new Date(now + this.options.maxMs).toISOString(), shown: cardDigest(shown) };
    await jobs.schedule<WatchPayload>({ school, id: watchJobId(userId, shown.updateKey!), kind: REFRESH_JOB_KIND, runAt: new Date(now + this.options.refreshMs), payload });
  }

  registerJobs(): void {
    const { jobs, directory, queue } = this.deps;
    jobs?.register<WatchPayload>(REFRESH_JOB_KIND, async (job) => {
      const { userId, until } = job.payload;
      const subject = subjectSchema.parse(job.payload.subject);
      if (Date.now() > Date.parse(until)) return;
      // Whoever lost the role since asking stops getting the figures.
      const user = await directory.getUser(job.school, userId);
      if (!user || !hasPermission(effectiveRoles(user.data.roles), permissionFor(subject))) return;
      const rendered = await this.render(job.school, subject);
      if (!rendered) return;
      const shown = cardDigest(rendered.card);
      if (shown !== job.payload.shown) {
        // One broadcast id per run: a run repeated after a crash enqueues nothing new.
        const broadcastId = `progress-${digest(`${job.id}|${job.runAt}`).slice(0, 32)}`;
        await queue.enqueue(job.school, [{ recipient: userId, replies: [card(rendered.card)] }], { broadcastId, origin: REFRESH_JOB_KIND });
      }
      if (rendered.finished) return;
      await jobs.schedule<WatchPayload>({ school: job.school, id: job.id, kind: REFRESH_JOB_KIND, runAt: new Date(Date.now() + this.options.refreshMs), payload: { ...job.payload, shown } });
    });
  }

  routes(): Route[] {
    const refresh: Route = {
      name: REFRESH_ROUTE,
      handle: async (turn) => {
        const subject = subjectSchema.parse(turn.inbound.submission?.subject);
        const permission = permissionFor(subject);
        if (!hasPermission(turn.roles, permission)) {
          await this.deps.audit.record(turn.school.id, { actor: turn.user.id, action: REFRESH_ROUTE, outcome: 'refused' });
          requirePermission(turn.roles, permission);
        }
        return this.show(turn, subject);
      },
    };
    return [refresh];
  }
}

function refreshAction(subject: ProgressSubject): Action {
  return { type: 'submit', title: 'Refresh', data: { route: REFRESH_ROUTE, subject } };
}

/** One refresh job per person and card: asking again replaces it. Job ids allow only a few characters, so the user id is digested. */
function watchJobId(userId: string, updateKey: string): string {
  return `progress:${updateKey.replace(/[^A-Za-z0-9._@-]/g, '_').slice(0, 150)}:${digest(userId).slice(0, 22)}`;
}
