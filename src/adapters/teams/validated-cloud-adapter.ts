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
import { AppError } from '../../errors.ts';

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

/** What an admin needs to know when a request is refused: where the token must come from. */
const NOT_AUTHENTICATED =
  'The request carries no valid Bot Framework token for this bot (MICROSOFT_APP_ID is set). ' +
  'Give the Bot Framework Emulator the same app id and password, or leave MICROSOFT_APP_ID unset for local use.';

export class ValidatedCloudAdapter extends CloudAdapter {
  /**
   * Runs the turn for a validated Activity body and answers as process() would: the invoke
   * response's status and body, or 200. A request that fails authentication throws
   * AppError('unauthorized') (botbuilder's reason as its cause) for the server to answer and log.
   */
  async processValidated(req: Request, res: Response, logic: (context: TurnContext) => Promise<void>): Promise<void> {
    const activity = withDates(req.body as Activity & Record<string, unknown>);
    const invokeResponse = await this.processActivity(req.header('authorization') ?? '', activity, logic).catch((error: unknown) => {
      throw error instanceof AuthenticationError ? new AppError('unauthorized', NOT_AUTHENTICATED, { cause: error }) : error;
    });
    res.status(invokeResponse?.status ?? 200);
    if (invokeResponse?.body !== undefined) res.send(invokeResponse.body);
    res.end();
  }
}
