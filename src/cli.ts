/**
 * `esafety-bot` commands. Logs go to standard error; standard output carries only data (JSON
 * lines, CSV, tables), so commands can be piped.
 *
 *   serve                                   start the HTTP server (npm start)
 *   chat [--user NAME]                      talk to the bot in the terminal
 *   answer --policies DIR                   evaluation interface: JSON lines in, JSON lines out
 *   eval --policies DIR --labelled F [--intents F] [--verbose]
 *   schools add --id ID --name NAME [--teams-tenant ID] [--slack-team ID] | schools list
 *   roles grant|revoke --school ID --user ID --role ROLE | roles list --school ID
 *   policies import DIR [--school ID] | policies list [--school ID]
 */
import { parseArgs } from 'node:util';
import { roleIds, roleSchema } from './bot/roles.ts';
import { runAnswerCommand } from './commands/answer.ts';
import { runEvalCommand } from './commands/eval.ts';
import { loadDotEnv, loadSettings, type Settings } from './config.ts';
import { AppError, asAppError } from './errors.ts';
import { createLogger, type Logger } from './logger.ts';
import type { CoreParts } from './main.ts';
import { loadPolicyDirectory } from './policies/load.ts';

const usage = `Usage: esafety-bot <command>
  serve                                   start the bot's HTTP server
  chat [--user NAME]                      talk to the bot in this terminal
  answer --policies DIR                   JSON lines {"id","question"} in, answers out
  eval --policies DIR --labelled FILE [--intents FILE] [--verbose]
  schools add --id ID --name NAME [--teams-tenant ID] [--slack-team ID] [--time-zone TZ] [--contact "NAME=NUMBER" ...]
  schools list
  roles grant|revoke --school ID --user ID --role ROLE
  roles list --school ID
  policies import DIR [--school ID]
  policies list [--school ID]
  policies publish DOC --due YYYY-MM-DD [--audience all|teaching,support,leadership,governors] [--school ID]
  policies acks --doc DOC [--school ID]      acknowledgements of the current version as CSV
  incidents export --school ID --format csv|json
  incidents report --school ID [--period month|term|year] [--format csv|json]
  incidents retention --school ID [--dry-run]
  questions retention --school ID [--dry-run]  deletes questions and escalations past QUESTION_LOG_RETENTION_DAYS
  people forget --school ID --user ID [--dry-run]  erases a member of staff's personal data (safeguarding records are kept)`;

function settingsOrExit(): Settings {
  loadDotEnv();
  return loadSettings();
}

// The server stack (restify, botbuilder, Bolt) is imported only by the commands that need it, so
// `answer` and `eval` start fast and print nothing but their data.
// Commands enqueue proactive messages in the durable outbox: the running server's worker sends them.
async function withCore<T>(log: Logger, run: (core: CoreParts) => Promise<T>): Promise<T> {
  const { createCore, prepareDefaultSchool } = await import('./main.ts');
  const settings = settingsOrExit();
  const core = await createCore(settings, log, { delivery: { featuresUseOutbox: true } });
  try {
    await prepareDefaultSchool(core, log);
    return await run(core);
  } finally {
    await core.store.close();
  }
}

/** What an erasure did, for the admin to pass on to the person (standard error: no data on standard output). */
function erasureReport(summary: import('./bot/features/personal-data.ts').ErasureSummary, userId: string, dryRun: boolean): string {
  const removed = dryRun ? 'would remove' : 'removed';
  const { school, kept, directoryRecord, staffProfile, ...counts } = summary;
  // A mistyped id erases nothing and says so, rather than a list of zeros that reads like success.
  if (!directoryRecord && !staffProfile && [...Object.values(counts), ...Object.values(kept)].every((n) => n === 0)) {
    return `${dryRun ? 'Dry run: nothing changed. ' : ''}No record in school ${school} is about ${userId}: nothing to erase. Check the id (the person's user id on Teams or Slack, not their name).`;
  }
  return [
    `${dryRun ? 'Dry run: nothing changed. ' : ''}Personal data of ${userId} in school ${summary.school}:`,
    `  ${removed}: directory record (name, roles, how to message them): ${summary.directoryRecord ? 'yes' : 'none found'}; staff groups: ${summary.staffProfile ? 'yes' : 'none found'}`,
    `  ${removed}: ${summary.conversations} conversation state(s), ${summary.incidentDrafts} incident report draft(s), ${summary.questions} question(s), ${summary.escalationsDeleted} question(s) to the coordinator, ${summary.slackForms} Slack form(s), ${summary.policyLinkOpens} policy link read receipt(s), ${summary.messageRefs} progress card reference(s)`,
    `  ${dryRun ? 'would anonymise' : 'anonymised'}: ${summary.escalationsAnonymised} coordinator question(s) kept as school policy or answered by them`,
    `  kept (records of the school, without their name): ${summary.kept.cases} incident case(s), ${summary.kept.acknowledgements} policy acceptance(s), ${summary.kept.alertAcknowledgements} critical alert acknowledgement(s), and the audit trail`,
  ].join('\n');
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value.trim() === '') throw new AppError('bad_request', `--${name} is required`);
  return value.trim();
}

export async function main(argv: string[]): Promise<number> {
  const [command, sub, ...rest] = argv;
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const err = (line: string) => process.stderr.write(`${line}\n`);
  try {
    switch (command) {
      case 'serve': {
        const settings = settingsOrExit();
        const log = createLogger({ level: settings.logLevel, destination: 'stdout' });
        const [{ createApp }, { startServer }] = await Promise.all([import('./main.ts'), import('./startup.ts')]);
        // An unreachable store does not stop the process: it listens, not ready, until the store answers.
        const app = await startServer(settings, log, { createApp: (port) => createApp({ ...settings, port }, log) });
        let stopping = false;
        // A start-up that fails for another reason while waiting for the store ends the process (logged by startServer).
        app.ready.catch(() => {
          if (!stopping) process.exit(1);
        });
        const port = app.port;
        log.info({ port }, 'listening');
        err(`esafety-bot is running: http://localhost:${port}/  (Teams/Emulator: http://localhost:${port}/api/messages)`);
        const stop = async (signal: string) => {
          stopping = true;
          log.info({ signal }, 'shutting down');
          await app.close();
          process.exit(0);
        };
        process.once('SIGTERM', () => void stop('SIGTERM'));
        process.once('SIGINT', () => void stop('SIGINT'));
        await new Promise(() => undefined);
        return 0;
      }
      case 'chat': {
        const { values } = parseArgs({ args: [sub, ...rest].filter((a): a is string => a !== undefined), options: { user: { type: 'string' } } });
        const settings = settingsOrExit();
        const log = createLogger({ level: settings.logLevel === 'info' ? 'warn' : settings.logLevel, destination: 'stderr' });
        const { runTerminalChat } = await import('./adapters/terminal/terminal-chat.ts');
        return await withCore(log, async (core) => {
          await runTerminalChat({ bot: core.bot, user: values.user ?? process.env.USER ?? 'me', input: process.stdin, output: process.stdout });
          return 0;
        });
      }
      case 'answer': {
        const { values } = parseArgs({ args: [sub, ...rest].filter((a): a is string => a !== undefined), options: { policies: { type: 'string' } } });
        return await runAnswerCommand({ policies: required(values, 'policies'), input: process.stdin, output: process.stdout, warn: err });
      }
      case 'eval': {
        const { values } = parseArgs({
          args: [sub, ...rest].filter((a): a is string => a !== undefined),
          options: { policies: { type: 'string' }, labelled: { type: 'string' }, intents: { type: 'string' }, verbose: { type: 'boolean', default: false } },
        });
        return await runEvalCommand({ policies: required(values, 'policies'), labelled: required(values, 'labelled'), intents: values.intents, verbose: values.verbose ?? false, out });
      }
      case 'schools': {
        const { values } = parseArgs({ args: rest, options: { id: { type: 'string' }, name: { type: 'string' }, 'teams-tenant': { type: 'string' }, 'slack-team': { type: 'string' }, 'time-zone': { type: 'string' }, contact: { type: 'string', multiple: true } } });
        // --contact "Out-of-hours DSL=07700 900123" (repeatable): shown with the immediate safeguarding steps.
        const contacts = values.contact?.length
          ? Object.fromEntries(
              values.contact.map((entry) => {
                const at = entry.indexOf('=');
                if (at < 1 || at === entry.length - 1) throw new AppError('bad_request', `--contact must look like "LADO=01234 567890" (got "${entry}")`);
                return [entry.slice(0, at).trim(), entry.slice(at + 1).trim()];
              }),
            )
          : undefined;
        if (values['time-zone']) {
          try {
            new Intl.DateTimeFormat('en-GB', { timeZone: values['time-zone'] });
          } catch {
            throw new AppError('bad_request', `--time-zone "${values['time-zone']}" is not a time zone (e.g. Europe/London)`);
          }
        }
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        return await withCore(log, async (core) => {
          const { directory } = core;
          if (sub === 'add') {
            const school = await directory.upsertSchool({ id: required(values, 'id'), name: required(values, 'name'), teamsTenant: values['teams-tenant'], slackTeam: values['slack-team'], timeZone: values['time-zone'], contacts });
            // Its reminders and retention sweeps, run by the server's job runner without a restart.
            const { recurringWork } = await import('./main.ts');
            await recurringWork(core)(school.id);
            out(JSON.stringify(school));
            return 0;
          }
          if (sub === 'list') {
            for (const school of await directory.listSchools()) out(JSON.stringify(school));
            return 0;
          }
          throw new AppError('bad_request', 'use "schools add" or "schools list"');
        });
      }
      case 'roles': {
        const { values } = parseArgs({ args: rest, options: { school: { type: 'string' }, user: { type: 'string' }, role: { type: 'string' } } });
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        return await withCore(log, async ({ directory }) => {
          const schoolId = required(values, 'school');
          if (!(await directory.getSchool(schoolId))) throw new AppError('not_found', `no school "${schoolId}"; register it with "schools add"`);
          if (sub === 'list') {
            for (const user of await directory.listUsers(schoolId)) if (user.roles.length) out(`${user.id}\t${user.roles.join(',')}\t${user.name ?? ''}`);
            return 0;
          }
          if (sub !== 'grant' && sub !== 'revoke') throw new AppError('bad_request', 'use "roles grant", "roles revoke" or "roles list"');
          const role = roleSchema.safeParse(required(values, 'role'));
          if (!role.success || role.data === 'staff') throw new AppError('bad_request', `--role must be one of ${roleIds.filter((r) => r !== 'staff').join(', ')}`);
          const user = required(values, 'user');
          const roles = sub === 'grant' ? await directory.grantRole(schoolId, user, role.data) : await directory.revokeRole(schoolId, user, role.data);
          out(`${user}\t${roles.join(',')}`);
          return 0;
        });
      }
      case 'policies': {
        const { values, positionals } = parseArgs({ args: rest, allowPositionals: true, options: { school: { type: 'string' }, audience: { type: 'string', default: 'all' }, due: { type: 'string' }, doc: { type: 'string' } } });
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        return await withCore(log, async ({ library, directory, settings, acks }) => {
          const schoolId = values.school ?? settings.defaultSchool.id;
          if (!(await directory.getSchool(schoolId))) throw new AppError('not_found', `no school "${schoolId}"; register it with "schools add"`);
          if (sub === 'list') {
            for (const entry of await library.list(schoolId)) out(`${entry.docId}\t${entry.version}\t${entry.hash.slice(0, 12)}\t${entry.meta.review ?? ''}\t${entry.title}`);
            return 0;
          }
          if (sub === 'publish') {
            // Publishing is deliberate: importing never messages anyone, this does.
            const docId = positionals[0];
            if (!docId) throw new AppError('bad_request', 'policies publish needs the document: esafety-bot policies publish DOC --due YYYY-MM-DD [--audience all|teaching,support]');
            const audience = values.audience === 'all' ? 'all' : (values.audience ?? 'all').split(',').filter(Boolean);
            const { staffGroups } = await import('./bot/features/acknowledgements/service.ts');
            if (audience !== 'all' && audience.some((g) => !(staffGroups as readonly string[]).includes(g))) throw new AppError('bad_request', `--audience must be all or groups from ${staffGroups.join(', ')}`);
            const { campaign, queued } = await acks.publish(schoolId, { docId, audience: audience as never, due: required(values, 'due'), by: 'cli' });
            out(JSON.stringify({ campaign: campaign.id, version: campaign.version, due: campaign.due, queued }));
            return 0;
          }
          if (sub === 'acks') {
            const campaign = await acks.currentCampaign(schoolId, required(values, 'doc'));
            if (!campaign) throw new AppError('not_found', 'the current version of that policy has not been published');
            process.stdout.write(await acks.csv(schoolId, campaign));
            return 0;
          }
          if (sub !== 'import') throw new AppError('bad_request', 'use "policies import DIR", "policies list", "policies publish DOC --due DATE" or "policies acks --doc DOC"');
          const dir = positionals[0];
          if (!dir) throw new AppError('bad_request', 'policies import needs the folder: esafety-bot policies import DIR');
          const loaded = await loadPolicyDirectory(dir);
          for (const error of loaded.errors) err(`not imported: ${error}`);
          for (const warning of loaded.warnings) err(`warning: ${warning}`);
          const report = await library.import(schoolId, loaded.documents, 'cli');
          out(JSON.stringify(report));
          return loaded.errors.length ? 1 : 0;
        });
      }
      case 'incidents': {
        const { values } = parseArgs({ args: rest, options: { school: { type: 'string' }, format: { type: 'string', default: 'csv' }, period: { type: 'string', default: 'term' }, 'dry-run': { type: 'boolean', default: false } } });
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        const { casesToCsv, countCases, defaultRetention, governorsReportCsv, periodFor } = await import('./bot/features/incidents/reports.ts');
        const { AuditLog } = await import('./bot/audit.ts');
        const { CaseBook } = await import('./bot/features/incidents/cases.ts');
        return await withCore(log, async ({ directory, store, incidents, settings }) => {
          const schoolId = required(values, 'school');
          if (!(await directory.getSchool(schoolId))) throw new AppError('not_found', `no school "${schoolId}"; register it with "schools add"`);
          const format = values.format;
          if (format !== 'csv' && format !== 'json') throw new AppError('bad_request', '--format must be csv or json');
          const cases = await new CaseBook(store).list(schoolId);
          const audit = new AuditLog(store);
          if (sub === 'export') {
            // An export leaves the bot with every detail: it is audited like any other read.
            await audit.record(schoolId, { actor: 'cli', action: 'incident.export', outcome: 'ok', detail: `${cases.length} cases as ${format}` });
            process.stdout.write(format === 'csv' ? casesToCsv(cases) : `${JSON.stringify(cases, null, 2)}\n`);
            return 0;
          }
          if (sub === 'report') {
            const kind = values.period;
            if (kind !== 'month' && kind !== 'term' && kind !== 'year') throw new AppError('bad_request', '--period must be month, term or year');
            const period = periodFor(kind, new Date());
            const counts = countCases(cases, period);
            process.stdout.write(format === 'csv' ? governorsReportCsv(period, counts) : `${JSON.stringify({ period: period.label, total: counts.total, byCategory: Object.fromEntries(counts.byCategory), byRiskArea: Object.fromEntries(counts.byRisk), byStatus: Object.fromEntries(counts.byStatus) }, null, 2)}\n`);
            return 0;
          }
          if (sub === 'retention') {
            const policy = { ...defaultRetention, ...settings.incidents.retentionOverrides };
            const refs = await incidents.applyRetention(schoolId, policy, new Date(), { dryRun: values['dry-run'] });
            for (const ref of refs) out(ref);
            err(`${values['dry-run'] ? 'would anonymise' : 'anonymised'} ${refs.length} closed case(s) past their retention period`);
            return 0;
          }
          throw new AppError('bad_request', 'use "incidents export", "incidents report" or "incidents retention"');
        });
      }
      case 'questions':
      case 'people': {
        // Data protection: the question log's retention and a person's erasure (src/bot/features/personal-data.ts).
        const { values } = parseArgs({ args: rest, options: { school: { type: 'string' }, user: { type: 'string' }, 'dry-run': { type: 'boolean', default: false } } });
        if (command === 'questions' && sub !== 'retention') throw new AppError('bad_request', 'use "questions retention --school ID [--dry-run]"');
        if (command === 'people' && sub !== 'forget') throw new AppError('bad_request', 'use "people forget --school ID --user ID [--dry-run]"');
        const schoolId = required(values, 'school');
        const userId = command === 'people' ? required(values, 'user') : undefined;
        const dryRun = values['dry-run'] ?? false;
        const log = createLogger({ level: 'warn', destination: 'stderr' });
        return await withCore(log, async ({ directory, personalData, settings }) => {
          if (!(await directory.getSchool(schoolId))) throw new AppError('not_found', `no school "${schoolId}"; register it with "schools add"`);
          if (userId === undefined) {
            const days = settings.questionLogRetentionDays;
            const result = await personalData.applyQuestionLogRetention(schoolId, days, new Date(), { dryRun });
            err(`${dryRun ? 'would delete' : 'deleted'} ${result.questions.length} question(s) and ${result.escalations.length} escalation(s) older than ${days} days`);
            return 0;
          }
          const summary = await personalData.forget(schoolId, userId, { actor: 'cli', dryRun });
          err(erasureReport(summary, userId, dryRun));
          return 0;
        });
      }
      case undefined:
      case 'help':
      case '--help':
        out(usage);
        return 0;
      default:
        err(`unknown command "${command}"\n${usage}`);
        return 2;
    }
  } catch (error) {
    const appError = asAppError(error);
    if (appError.code === 'config_invalid') {
      err('esafety-bot cannot start; fix these settings:');
      for (const line of appError.message.split('\n')) err(`  ${line}`);
    } else if (appError.code === 'internal') err(`esafety-bot: ${appError.message}\n${appError.stack ?? ''}`);
    else err(`esafety-bot: ${appError.message}`);
    return 1;
  }
}
