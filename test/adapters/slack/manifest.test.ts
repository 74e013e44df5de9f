/**
 * manifest/slack/manifest.yaml matches what the adapter handles: the scopes it asks for in an OAuth
 * install, the commands and shortcuts it answers, the events it listens to, and one request URL.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { SLACK_BOT_SCOPES, SLACK_COMMANDS, SLACK_REDIRECT_PATH, SLACK_SHORTCUTS } from '../../../src/adapters/slack/slack-channel.ts';
import { repoRoot } from '../../helpers/app.ts';

const manifest = YAML.parse(readFileSync(path.join(repoRoot, 'manifest/slack/manifest.yaml'), 'utf8'));
const EVENTS_URL = 'https://YOUR_HOST/slack/events';

describe('the Slack app manifest', () => {
  it('asks for exactly the bot scopes the OAuth install asks for', () => {
    expect([...manifest.oauth_config.scopes.bot].sort()).toEqual([...SLACK_BOT_SCOPES].sort());
    expect(manifest.oauth_config.redirect_urls).toEqual([`https://YOUR_HOST${SLACK_REDIRECT_PATH}`]);
  });

  it('declares the slash commands and shortcuts the adapter answers, all on /slack/events', () => {
    expect(manifest.features.slash_commands.map((c: { command: string }) => c.command).sort()).toEqual(Object.values(SLACK_COMMANDS).sort());
    for (const command of manifest.features.slash_commands) expect(command.url).toBe(EVENTS_URL);
    expect(manifest.features.shortcuts.map((s: { callback_id: string; type: string }) => [s.callback_id, s.type])).toEqual([
      [SLACK_SHORTCUTS.reportMessage, 'message'],
      [SLACK_SHORTCUTS.reportIncident, 'global'],
    ]);
    expect(manifest.settings.interactivity).toEqual({ is_enabled: true, request_url: EVENTS_URL });
  });

  it('subscribes to the events the adapter handles, with the scopes they need', () => {
    expect(manifest.settings.event_subscriptions.request_url).toBe(EVENTS_URL);
    expect([...manifest.settings.event_subscriptions.bot_events].sort()).toEqual(['app_home_opened', 'app_mention', 'app_uninstalled', 'message.im', 'team_join', 'tokens_revoked', 'user_change']);
    // team_join and user_change (the staff directory) need users:read.
    expect(manifest.oauth_config.scopes.bot).toContain('users:read');
    expect(manifest.oauth_config.scopes.bot).toEqual(expect.arrayContaining(['im:history', 'app_mentions:read', 'im:write', 'chat:write', 'commands']));
    expect(manifest.features.app_home).toEqual({ home_tab_enabled: true, messages_tab_enabled: true, messages_tab_read_only_enabled: false });
    expect(manifest.settings.socket_mode_enabled).toBe(false);
  });

  it('keeps within Slack\'s lengths for names and descriptions', () => {
    const info = manifest.display_information;
    expect(info.name.length).toBeLessThanOrEqual(35);
    expect(info.description.length).toBeLessThanOrEqual(140);
    expect(info.long_description.length).toBeGreaterThanOrEqual(175);
    expect(info.long_description.length).toBeLessThanOrEqual(4000);
    expect(manifest.features.bot_user.display_name.length).toBeLessThanOrEqual(80);
    for (const shortcut of manifest.features.shortcuts) {
      expect(shortcut.name.length).toBeLessThanOrEqual(24);
      expect(shortcut.description.length).toBeLessThanOrEqual(150);
    }
    for (const command of manifest.features.slash_commands) expect(command.description.length).toBeLessThanOrEqual(2000);
  });
});
