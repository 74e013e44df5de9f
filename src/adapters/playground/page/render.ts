/** The playground's one HTML page. Everything it runs is served by this server: Web Chat's bundle and playground.js. */
import type { PlaygroundIdentity } from '../identities.ts';

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export function renderPage(options: { identities: readonly PlaygroundIdentity[]; schoolName: string }): string {
  const school = escapeHtml(options.schoolName);
  const choices = options.identities
    .map((identity) => `<option value="${escapeHtml(identity.key)}" data-user-id="${escapeHtml(identity.userId)}" data-name="${escapeHtml(identity.name)}">${escapeHtml(identity.label)}: ${escapeHtml(identity.name)}</option>`)
    .join('\n          ');
  return `<!doctype html>
<html lang="en-GB">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>esafety-bot playground · ${school}</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="/playground/playground.css">
  </head>
  <body>
    <a class="skip-link" href="#chat" id="skip-to-chat">Skip to the message box</a>
    <header>
      <h1>esafety-bot playground</h1>
      <p class="intro">The e-safety bot as staff at ${school} meet it in Teams: the same bot and the same cards, running on this computer in Microsoft's Web Chat.</p>
      <p class="intro">Ask about the school's policies, report a concern, or switch person to see what the coordinator, the DSL or the management team sees. Only this computer can open this page.</p>
      <div class="identity">
        <label for="identity">You are</label>
        <select id="identity" name="identity">
          ${choices}
        </select>
        <span id="connection" role="status" aria-live="polite"></span>
      </div>
    </header>
    <main id="chat" aria-label="Chat with esafety-bot" tabindex="-1"></main>
    <noscript><p>The playground needs JavaScript: it runs Microsoft's Web Chat.</p></noscript>
    <script src="/playground/webchat.js"></script>
    <script src="/playground/playground.js"></script>
  </body>
</html>
`;
}
