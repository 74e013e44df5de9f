/**
 * A typed table of named routes. A submission goes to the route its data names; text goes to the
 * first text route whose pattern matches, and otherwise to the fallback (asking the knowledge base).
 */
import type { Reply } from './reply.ts';
import type { Turn } from './turn.ts';

export interface Route {
  /** Dotted name: `feature.action`. Submissions carry it as `route`. */
  name: string;
  /** For text commands: when the text matches. Submission-only routes leave it out. */
  matchText?: (text: string, turn: Turn) => boolean;
  handle: (turn: Turn) => Promise<Reply[]>;
}

export class Router {
  readonly #routes = new Map<string, Route>();
  readonly #textRoutes: Route[] = [];

  constructor(private readonly fallback: Route) {}

  add(...routes: Route[]): this {
    for (const route of routes) {
      if (this.#routes.has(route.name)) throw new Error(`route ${route.name} registered twice`);
      this.#routes.set(route.name, route);
      if (route.matchText) this.#textRoutes.push(route);
    }
    return this;
  }

  /** The route for a turn, or undefined for a submission naming no known route. */
  select(turn: Turn): Route | undefined {
    if (turn.inbound.submission) return this.#routes.get(turn.inbound.submission.route);
    const text = (turn.inbound.text ?? '').trim();
    return this.#textRoutes.find((route) => route.matchText!(text, turn)) ?? this.fallback;
  }

  get names(): string[] {
    return [...this.#routes.keys()];
  }
}
