/**
 * CloudAdapter for bodies the server has already parsed and validated (src/server.ts and
 * validateActivity in teams-adapter.ts). botbuilder's process() validates them again with zod on
 * every turn (the response object, the logic function, the body shallowly, twice, the auth header):
 * about a twentieth of a question turn's CPU for checks that cannot fail here. This does what
 * process() does after its checks, through the subclass hook CloudAdapterBase provides for it.
 */
import { CloudAdapter, type Activity, type TurnContext } from 'botbuilder';
import { AuthenticationError } from 'botframework-connector';
import type { Request, Response } from 'restify';

/** Timestamps as botbuilder's validateAndFixActivity leaves them: Dates, with the sent text kept in raw*. */
function withDates(activity: Activity & Record<string, unknown>): Activity {
  for (const [field, raw] of [['timestamp', 'rawTimestamp'], ['expiration', 'rawExpiration'], ['localTimestamp', 'rawLocalTimestamp']] as const) {
    const value = activity[field];
    if (typeof value === 'string') {
      activity[raw] = value;
      activity[field] = new Date(value);
    }
  }
  return activity;
}

export class ValidatedCloudAdapter extends CloudAdapter {
  /**
   * Runs the turn for a validated Activity body and answers as process() would: the invoke
   * response's status and body, or 200. A request that fails authentication gets 401 in the
   * server's error shape; anything else thrown is left to the server's error handling.
   */
  async processValidated(req: Request, res: Response, logic: (context: TurnContext) => Promise<void>): Promise<void> {
    const activity = withDates(req.body as Activity & Record<string, unknown>);
    const authorization = req.header('authorization') ?? '';
    let invokeResponse: { status: number; body?: unknown } | undefined;
    try {
      invokeResponse = await this.processActivity(authorization, activity, logic);
    } catch (error) {
      if (!(error instanceof AuthenticationError)) throw error;
      res.status(401);
      res.json({ error: { code: 'unauthorized', message: 'The request is not authenticated for this bot' } });
      return;
    }
    res.status(invokeResponse?.status ?? 200);
    if (invokeResponse?.body !== undefined) res.send(invokeResponse.body);
    res.end();
  }
}
