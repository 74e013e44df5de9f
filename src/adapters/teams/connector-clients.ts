/**
 * Connector clients made once and reused, instead of afresh for every turn and every proactive send.
 *
 * botbuilder's CloudAdapter asks its BotFrameworkAuthentication for a new ConnectorClient (and a
 * UserTokenClient) on every turn. Each one is an @azure/core-client ServiceClient: credentials, a
 * request pipeline of a dozen policies, proxy settings read from the environment. Building them was
 * about a tenth of a question turn's CPU. The clients are made to be long-lived and shared by
 * concurrent requests (Bot Framework's own .NET adapter caches them per service URL and credentials);
 * the credentials fetch and refresh their tokens themselves.
 *
 * Two kinds of client, because two kinds of caller:
 * - replies inside a turn (`authenticateRequest`'s factory) keep the client's own retry policy, so a
 *   429 or 5xx from the connector is retried after its Retry-After, as botbuilder does by default;
 * - proactive work (`createConnectorFactory`: continueConversationAsync, createConversationAsync)
 *   gets clients without it: the caller decides what a refusal means (the outbox pauses the whole
 *   school, the roster sync backs off), and a client retrying by itself would hide the 429 from them.
 */
import {
  AuthenticationConstants,
  BotFrameworkAuthentication,
  ConnectorFactory,
  type AuthenticateRequestResult,
  type BotFrameworkClient,
  type ClaimsIdentity,
  type ConnectorClient,
  type UserTokenClient,
} from 'botframework-connector';
import type { Activity } from 'botbuilder';

/**
 * Enough for every service URL and audience a school's tenants use (Teams has a few regional ones);
 * the bound only stops an unusual sender (the Emulator on changing ports, tests) from growing it forever.
 */
const MAX_CLIENTS = 64;

/** A small map that forgets its oldest entry beyond `max`; a rejected value is forgotten at once, so a failure is retried next time. */
export class PromiseCache<T> {
  readonly #entries = new Map<string, Promise<T>>();
  constructor(private readonly max: number) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    const cached = this.#entries.get(key);
    if (cached) return cached;
    const made = make();
    this.#entries.set(key, made);
    made.catch(() => {
      if (this.#entries.get(key) === made) this.#entries.delete(key);
    });
    if (this.#entries.size > this.max) this.#entries.delete(this.#entries.keys().next().value!);
    return made;
  }

  get size(): number {
    return this.#entries.size;
  }
}

type RetryablePipeline = { client?: { pipeline?: { removePolicy(options: { phase: 'Retry' }): unknown } } };

/** The caller decides about 429s and 5xx: the client's own retry policy (three tries, each waiting Retry-After) is taken out. */
function withoutRetries(client: ConnectorClient): ConnectorClient {
  (client as unknown as RetryablePipeline).client?.pipeline?.removePolicy({ phase: 'Retry' });
  return client;
}

/** The bot's app id as the claims name it (as botbuilder's own factory derives it); empty when auth is off. */
function appIdOf(claims: ClaimsIdentity): string {
  return claims.getClaimValue(AuthenticationConstants.AudienceClaim) ?? claims.getClaimValue(AuthenticationConstants.AppIdClaim) ?? '';
}

class CachingConnectorFactory extends ConnectorFactory {
  constructor(
    private readonly inner: ConnectorFactory,
    private readonly appId: string,
    private readonly clients: PromiseCache<ConnectorClient>,
    private readonly retries: boolean,
  ) {
    super();
  }

  create(serviceUrl: string, audience?: string): Promise<ConnectorClient> {
    // JSON keeps the parts apart whatever characters they hold.
    const key = JSON.stringify([this.appId, serviceUrl, audience ?? null]);
    return this.clients.get(key, async () => {
      const client = await this.inner.create(serviceUrl, audience);
      return this.retries ? client : withoutRetries(client);
    });
  }
}

/** Wraps the configured authentication: requests are still authenticated by it, every time; only the clients are kept. */
export class ReusedClientsAuthentication extends BotFrameworkAuthentication {
  readonly #replyClients = new PromiseCache<ConnectorClient>(MAX_CLIENTS);
  readonly #proactiveClients = new PromiseCache<ConnectorClient>(MAX_CLIENTS);
  readonly #userTokenClients = new PromiseCache<UserTokenClient>(MAX_CLIENTS);

  constructor(private readonly inner: BotFrameworkAuthentication) {
    super();
  }

  async authenticateRequest(activity: Activity, authHeader: string): Promise<AuthenticateRequestResult> {
    const result = await this.inner.authenticateRequest(activity, authHeader);
    if (!result.connectorFactory) return result;
    return { ...result, connectorFactory: new CachingConnectorFactory(result.connectorFactory, appIdOf(result.claimsIdentity), this.#replyClients, true) };
  }

  authenticateStreamingRequest(authHeader: string, channelIdHeader: string): Promise<AuthenticateRequestResult> {
    return this.inner.authenticateStreamingRequest(authHeader, channelIdHeader);
  }

  createConnectorFactory(claimsIdentity: ClaimsIdentity): ConnectorFactory {
    return new CachingConnectorFactory(this.inner.createConnectorFactory(claimsIdentity), appIdOf(claimsIdentity), this.#proactiveClients, false);
  }

  /** Made on every turn by CloudAdapter, used only by OAuth sign-in (which this bot does not use): one per app id. */
  createUserTokenClient(claimsIdentity: ClaimsIdentity): Promise<UserTokenClient> {
    return this.#userTokenClients.get(appIdOf(claimsIdentity), () => this.inner.createUserTokenClient(claimsIdentity));
  }

  override createBotFrameworkClient(): BotFrameworkClient {
    return this.inner.createBotFrameworkClient();
  }

  override getOriginatingAudience(): string {
    return this.inner.getOriginatingAudience();
  }

  override authenticateChannelRequest(authHeader: string): Promise<ClaimsIdentity> {
    return this.inner.authenticateChannelRequest(authHeader);
  }

  /** How many clients are kept (for tests). */
  get clientCount(): { replies: number; proactive: number; userTokens: number } {
    return { replies: this.#replyClients.size, proactive: this.#proactiveClients.size, userTokens: this.#userTokenClients.size };
  }
}
