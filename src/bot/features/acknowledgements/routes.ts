/**
 * Chat commands for acknowledgements (publish, accept, progress, remind, exempt, mine), staff
 * groups, coordinator alerts and the annual review report.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AppError } from '../../../errors.ts';
import type { MessageQueue } from '../../../delivery/types.ts';
import type { PolicyLibrary } from '../../../policies/library.ts';
import type { Store } from '../../../store/store.ts';
import type { AuditLog } from '../../audit.ts';
import type { Directory } from '../../directory.ts';
import { card, text, type Card } from '../../reply.ts';
import { hasPermission, requirePermission, type Permission } from '../../roles.ts';
import type { Route } from '../../router.ts';
import type { Turn } from '../../turn.ts';
import type { LiveProgress } from '../progress.ts';
import { campaignIdFor, staffGroups, type AcknowledgementService, type StaffGroup } from './service.ts';
import { reviewStatus } from './reviews.ts';

export interface AckRouteDeps {
  acks: AcknowledgementService;
  queue: MessageQueue;
  library: PolicyLibrary;
  directory: Directory;
  store: Store;
  audit: AuditLog;
  /** Progress cards that keep themselves up to date (alert status, acks status). */
  progress: LiveProgress;
}

/** Refuses and audits in one step, so every refused attempt leaves a trace in the store. */
async function guard(turn: Turn, audit: AuditLog, permission: Permission, action: string): Promise<void> {
  if (hasPermission(turn.roles, permission)) return;
  await audit.record(turn.school.id, { actor: turn.user.id, action, outcome: 'refused' });
  requirePermission(turn.roles, permission);
}

export const MAX_ALERT_LENGTH = 2000;

export interface AlertRecord {
  id: string;
  severity: 'info' | 'warning' | 'critical';
  text: string;
  by: string;
  at: string;
  broadcastId: string;
  recipients: number;
}

export const alertKey = (school: string, id: string) => ({ kind: 'alert', school, id });

export function alertCard(alert: AlertRecord): Card {
  return {
    kind: 'alert.message',
    title: `${alert.severity === 'critical' ? 'Critical e-safety alert' : alert.severity === 'warning' ? 'E-safety warning' : 'E-safety update'} from the coordinator`,
    tone: alert.severity === 'critical' ? 'attention' : 'default',
    blocks: [{ type: 'text', text: alert.text }, { type: 'text', style: 'muted', text: alert.at.slice(0, 10) }],
    actions: alert.severity === 'critical' ? [{ type: 'submit', title: 'I have read this', style: 'positive', data: { route: 'alert.ack', alertId: alert.id } }] : [],
  };
}

export function acknowledgementRoutes(deps: AckRouteDeps): Route[] {
  const { acks, audit, library, directory, store, queue, progress } = deps;

  const publish: Route = {
    name: 'ack.publish',
    matchText: (input) => /^\/?policies publish\b/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'policies.publish', 'ack.publish');
      const match = /^\/?policies publish\s+(\S+)(?:\s+to\s+([a-z, ]+?))?(?:\s+due\s+(\S+))?\s*$/i.exec((turn.inbound.text ?? '').trim());
      if (!match) return [text('Use: policies publish DOCUMENT [to all|teaching,support,leadership,governors] due YYYY-MM-DD')];
      const audienceText = (match[2] ?? 'all').toLowerCase().replace(/\s+/g, '');
      const groups = audienceText === 'all' ? 'all' : audienceText.split(',').filter(Boolean);
      if (groups !== 'all' && groups.some((g) => !(staffGroups as readonly string[]).includes(g))) {
        return [text(`Audience must be "all" or groups from: ${staffGroups.join(', ')}.`)];
      }
      if (!match[3]) return [text('Please give a due date: policies publish DOCUMENT due YYYY-MM-DD')];
      const { campaign, queued } = await acks.publish(turn.school.id, { docId: match[1]!, audience: groups as 'all' | StaffGroup[], due: match[3], by: turn.user.id });
      return [text(`Published ${campaign.title} version ${campaign.version} to ${groups === 'all' ? 'all staff' : groups.join(', ')}, due ${campaign.due}. ${queued} people are being asked to read and accept it. Progress: "acks status ${campaign.docId}".`)];
    },
  };

  const accept: Route = {
    name: 'ack.accept',
    handle: async (turn) => {
      const { campaignId } = z.object({ campaignId: z.string().max(200) }).parse(turn.inbound.submission);
      const result = await acks.accept(turn.school.id, campaignId, { id: turn.user.id, platform: turn.inbound.platform });
      switch (result.status) {
        case 'unknown':
          return [text('That policy version does not exist (any more). Nothing was recorded.')];
        case 'superseded':
          return [text(`${result.campaign!.title} has a newer version since this request. Nothing was recorded for the old one; you will be asked to read the new version.`)];
        case 'not-opened':
          return [text('Please open the policy first with "Read the policy"; then accept. Your acceptance is recorded against exactly the version you opened.')];
        case 'already':
          return [text(`You already accepted version ${result.campaign!.version} on ${result.at!.slice(0, 10)}. Thank you.`)];
        case 'accepted':
          await audit.record(turn.school.id, { actor: turn.user.id, action: 'ack.accept', target: campaignId, outcome: 'ok' });
          return [text(`Thank you: your acceptance of ${result.campaign!.title} version ${result.campaign!.version} is recorded.`)];
      }
    },
  };

  const resolveCampaign = async (turn: Turn, docId: string) => {
    const campaign = await acks.currentCampaign(turn.school.id, docId);
    if (!campaign) throw new AppError('not_found', `The current version of "${docId}" has not been published for acknowledgement.`);
    return campaign;
  };

  const status: Route = {
    name: 'ack.status',
    matchText: (input) => /^\/?acks?\s+(status|progress)\s+\S+$/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'policies.publish', 'ack.status');
      const campaign = await resolveCampaign(turn, (turn.inbound.text ?? '').trim().split(/\s+/)[2]!);
      return progress.show(turn, { type: 'ack', campaignId: campaign.id });
    },
  };

  const remind: Route = {
    name: 'ack.remind',
    matchText: (input) => /^\/?acks?\s+remind\s+\S+$/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'policies.publish', 'ack.remind');
      const campaign = turn.inbound.submission
        ? await acks.campaign(turn.school.id, z.object({ campaignId: z.string().max(200) }).parse(turn.inbound.submission).campaignId)
        : await resolveCampaign(turn, (turn.inbound.text ?? '').trim().split(/\s+/)[2]!);
      if (!campaign) return [text('That policy version is not published any more.')];
      const count = await acks.remind(turn.school.id, campaign);
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'ack.remind', target: campaign.id, outcome: 'ok', detail: `${count} reminded` });
      return [text(count ? `Reminding ${count} people who have not accepted yet.` : 'Everyone has accepted; nobody to remind.')];
    },
  };

  const exempt: Route = {
    name: 'ack.exempt',
    matchText: (input) => /^\/?acks?\s+exempt\s+\S+\s+\S+$/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'policies.publish', 'ack.exempt');
      const [, , docId, userId] = (turn.inbound.text ?? '').trim().split(/\s+/);
      const campaign = await resolveCampaign(turn, docId!);
      await acks.exempt(turn.school.id, campaign.id, userId!);
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'ack.exempt', target: campaign.id, outcome: 'ok', detail: userId });
      return [text(`${userId} is exempt from ${campaign.title} version ${campaign.version} (they are not reminded or counted).`)];
    },
  };

  const mine: Route = {
    name: 'ack.mine',
    matchText: (input) => /^\/?(my acknowledgements|my acks|pending acknowledgements)$/i.test(input),
    handle: async (turn) => {
      const cards = await acks.pendingCards(turn.school.id, turn.user.id);
      if (!cards.length) return [text('You have no policies waiting for your acceptance.')];
      return cards.map((c) => card(c));
    },
  };

  const groups: Route = {
    name: 'staff.groups',
    matchText: (input) => /^\/?groups\b/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'roles.manage', 'staff.groups');
      const [, action, userId, list] = (turn.inbound.text ?? '').trim().split(/\s+/);
      const parsed = (list ?? '').split(',').filter(Boolean);
      if (!['set', 'lead'].includes(action ?? '') || !userId || parsed.some((g) => !(staffGroups as readonly string[]).includes(g))) {
        return [text(`Use "groups set USER_ID teaching,support" or "groups lead USER_ID teaching". Groups: ${staffGroups.join(', ')}.`)];
      }
      const profile = await acks.setProfile(turn.school.id, userId, (p) => (action === 'set' ? { ...p, groups: parsed as StaffGroup[] } : { ...p, leads: parsed as StaffGroup[] }));
      await audit.record(turn.school.id, { actor: turn.user.id, action: `staff.groups.${action}`, target: userId, outcome: 'ok' });
      return [text(`${userId}: groups ${profile.groups.join(', ') || 'none'}; leads ${profile.leads.join(', ') || 'none'}.`)];
    },
  };

  const alert: Route = {
    name: 'alert.send',
    matchText: (input) => /^\/?alert\b(?!\s+status\b)/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'alerts.broadcast', 'alert.send');
      const match = /^\/?alert(?:\s+(critical|warning|info))?\s*([\s\S]*)$/i.exec((turn.inbound.text ?? '').trim())!;
      const body = match[2]!.trim();
      if (!body) return [text('Write the alert after the word alert, e.g. "alert critical A scam message is going round asking staff for their login." Nothing was sent.')];
      if (body.length > MAX_ALERT_LENGTH) return [text(`That alert is ${body.length} characters; the limit is ${MAX_ALERT_LENGTH}. Nothing was sent.`)];
      const staff = (await directory.listUsers(turn.school.id)).filter((u) => u.id !== turn.user.id && !u.leftAt);
      const record: AlertRecord = {
        id: `alert-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`,
        severity: (match[1]?.toLowerCase() as AlertRecord['severity']) ?? 'info',
        text: body,
        by: turn.user.id,
        at: new Date().toISOString(),
        broadcastId: '',
        recipients: staff.length,
      };
      record.broadcastId = record.id;
      await store.create(alertKey(turn.school.id, record.id), record);
      const { count } = await queue.enqueue(turn.school.id, staff.map((u) => ({ recipient: u.id, replies: [card(alertCard(record))] })), { broadcastId: record.id });
      await audit.record(turn.school.id, { actor: turn.user.id, action: 'alert.send', target: record.id, outcome: 'ok', detail: `${count} recipients, ${record.severity}` });
      return [text(`Alert ${record.id} is going to ${count} people. Progress: "alert status ${record.id}".`)];
    },
  };

  const alertStatus: Route = {
    name: 'alert.status',
    matchText: (input) => /^\/?alert\s+status\s+\S+$/i.test(input),
    handle: async (turn) => {
      await guard(turn, audit, 'alerts.broadcast', 'alert.status');
      const id = (turn.inbound.text ?? '').trim().split(/\s+/)[2]!;
      return progress.show(turn, { type: 'alert', alertId: id });
    },
  };

  const alertAck: Route = {
    name: 'alert.ack',
    handle: async (turn) => {
      const { alertId } = z.object({ alertId: z.string().max(200) }).parse(turn.inbound.submission);
      const alertRecord = await store.get<AlertRecord>(alertKey(turn.school.id, alertId));
      if (!alertRecord) return [text('That alert does not exist (any more).')];
      await store.upsert({ kind: 'alert-read', school: turn.school.id, id: `${alertId}:${turn.user.id}` }, { at: new Date().toISOString() });
      return [text('Thank you: recorded that you have read the alert.')];
    },
  };

  const reviews: Route = {
    name: 'reviews.report',
    matchText: (input) => /^\/?(reviews?|review report|annual review)$/i.test(input),
    handle: async (turn) => {
      if (!hasPermission(turn.roles, 'qa.report')) {
        await audit.record(turn.school.id, { actor: turn.user.id, action: 'reviews.report', outcome: 'refused' });
        requirePermission(turn.roles, 'qa.report');
      }
      const entries = await library.list(turn.school.id);
      const now = new Date();
      return [
        card({
          kind: 'reviews.report',
          title: 'Annual review: policy status',
          blocks: [{ type: 'facts', facts: entries.map((e) => ({ title: e.title, value: `${reviewStatus(e.meta.review, now).label}${e.meta.owner ? ` · owner: ${e.meta.owner}` : ''} · version ${e.version}` })) }],
        }),
      ];
    },
  };

  return [publish, accept, status, remind, exempt, mine, groups, alert, alertStatus, alertAck, reviews];
}

export { campaignIdFor };
