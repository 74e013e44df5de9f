/**
 * A policy version as a readable, accessible web page, served through a link signed for one
 * person; serving it records that they opened it, which is what unlocks "I have read and accept".
 * HTTP-agnostic: the server maps the result to a response.
 */
import type { PolicyLibrary, PolicyVersion } from '../../../policies/library.ts';
import type { AcknowledgementService } from './service.ts';
import { verifyLink } from './links.ts';

const escapeHtml = (value: string) => value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** Policy text is shown as written, escaped: paragraphs and simple "- " lists, no raw HTML ever. */
function renderText(text: string): string {
  return text
    .split(/\n{2,}/)
    .map((block) => {
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*([-*]|\d+\.)\s+/.test(l))) return `<ul>${lines.map((l) => `<li>${escapeHtml(l.replace(/^\s*([-*]|\d+\.)\s+/, ''))}</li>`).join('')}</ul>`;
      return `<p>${escapeHtml(block).replace(/\n/g, '<br>')}</p>`;
    })
    .join('\n');
}

export function renderPolicyPage(version: PolicyVersion, schoolName: string): string {
  const sections = version.sections
    .map((s) => {
      const tag = s.level === 3 ? 'h3' : 'h2';
      return `<section id="${escapeHtml(s.slug)}" aria-labelledby="h-${escapeHtml(s.slug)}"><${tag} id="h-${escapeHtml(s.slug)}">${escapeHtml(s.heading)}</${tag}>${renderText(s.text)}</section>`;
    })
    .join('\n');
  const toc = version.sections.filter((s) => s.level !== 3).map((s) => `<li><a href="#${escapeHtml(s.slug)}">${escapeHtml(s.heading)}</a></li>`).join('');
  return `<!doctype html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(version.title)} (version ${escapeHtml(version.version)}) · ${escapeHtml(schoolName)}</title>
<style>
body{font:1.05rem/1.6 system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1.5rem;color:#1b1b1b;background:#fff}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem}h3{font-size:1.1rem}
nav{background:#f3f2f1;padding:.75rem 1rem}a{color:#1d4ed8}a:focus{outline:3px solid #fd0;background:#fd0;color:#000}
.meta{color:#505a5f}
</style>
</head>
<body>
<main>
<h1>${escapeHtml(version.title)}</h1>
<p class="meta">${escapeHtml(schoolName)} · version ${escapeHtml(version.version)} · imported ${escapeHtml(version.importedAt.slice(0, 10))}</p>
<p>Your opening of this page has been recorded. When you have read it, go back to the chat and choose <strong>I have read and accept</strong>.</p>
<nav aria-label="Sections"><ul>${toc}</ul></nav>
${sections}
</main>
</body>
</html>`;
}

export interface ReadRequest {
  school: string;
  docId: string;
  hash: string;
  userId: string;
  signature: string;
}

export async function handleReadRequest(
  deps: { library: PolicyLibrary; acks: AcknowledgementService; linkSecret: string; schoolName: (school: string) => Promise<string | undefined> },
  request: ReadRequest,
): Promise<{ status: 200 | 404; html: string }> {
  const notFound = { status: 404 as const, html: '<!doctype html><html lang="en-GB"><head><meta charset="utf-8"><title>Link not valid</title></head><body><main><h1>This link is not valid</h1><p>Use the "Read the policy" button in your chat with esafety-bot again.</p></main></body></html>' };
  if (!verifyLink(deps.linkSecret, request, request.signature)) return notFound;
  const schoolName = await deps.schoolName(request.school);
  const version = schoolName ? await deps.library.getVersion(request.school, request.docId, request.hash) : undefined;
  if (!version || !schoolName) return notFound;
  await deps.acks.recordOpened(request.school, request.docId, request.hash, request.userId);
  return { status: 200, html: renderPolicyPage(version, schoolName) };
}
