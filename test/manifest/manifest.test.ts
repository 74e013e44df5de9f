/**
 * The Teams app manifest template, filled with test ids, against the official JSON schema shipped
 * in @microsoft/app-manifest; broken manifests fail naming the field; the icons are what Teams asks.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { checkIcon, fillTemplate, manifestSchemaPath, manifestValues, PackageError, readTemplate, validateManifest } from '../../scripts/package-teams.ts';
import { drawColorIcon, drawOutlineIcon, manifestDir } from '../../scripts/package-teams.icons.ts';

const APP_ID = '6f1c2a4e-8b3d-4e5f-9a7b-0c1d2e3f4a5b';
const values = {
  MICROSOFT_APP_ID: APP_ID,
  BOT_DOMAIN: 'esafety-test.azurewebsites.net',
  APP_VERSION: '1.2.3',
  WEBSITE_URL: 'https://esafety-test.azurewebsites.net',
  PRIVACY_URL: 'https://school.example.org/privacy',
  TERMS_URL: 'https://school.example.org/acceptable-use',
};

type Manifest = Record<string, any>;
const filled = (): Manifest => fillTemplate(readTemplate(), values) as Manifest;

/** The filled manifest with one change, for the negative cases. */
function broken(change: (m: Manifest) => void): Manifest {
  const m = filled();
  change(m);
  return m;
}

describe('the manifest template', () => {
  it('uses the newest 1.x manifest schema that @microsoft/app-manifest ships, and names it in $schema', () => {
    const template = readTemplate() as Manifest;
    expect(template.manifestVersion).toMatch(/^1\.\d+$/);
    expect(template.$schema).toBe(`https://developer.microsoft.com/en-us/json-schemas/teams/v${template.manifestVersion}/MicrosoftTeams.schema.json`);
    expect(readFileSync(manifestSchemaPath(template.manifestVersion), 'utf8')).toContain('"manifestVersion"');
  });

  it('filled with test ids, is valid against the official schema', () => {
    expect(validateManifest(filled())).toEqual([]);
  });

  it('takes the app id and the domain from placeholders, and puts the bot id in both places', () => {
    const template = readTemplate() as Manifest;
    expect(template.id).toBe('{{MICROSOFT_APP_ID}}');
    expect(template.bots[0].botId).toBe('{{MICROSOFT_APP_ID}}');
    expect(template.validDomains).toEqual(['{{BOT_DOMAIN}}']);
    const m = filled();
    expect(m.id).toBe(APP_ID);
    expect(m.bots[0].botId).toBe(APP_ID);
    expect(m.validDomains).toEqual(['esafety-test.azurewebsites.net']);
    expect(JSON.stringify(m)).not.toContain('{{');
  });

  it('has the bot in personal, team and group chat scopes, never receiving files', () => {
    const bot = filled().bots[0];
    expect([...bot.scopes].sort()).toEqual(['groupChat', 'personal', 'team']);
    expect(bot.supportsFiles).toBe(false);
    expect(bot.isNotificationOnly).toBe(false);
  });

  it('lists ask, report an incident, my acknowledgements and help in personal chat; only ask and help where others read along', () => {
    const lists: Array<{ scopes: string[]; commands: Array<{ title: string }> }> = filled().bots[0].commandLists;
    const titles = (scope: string) => lists.filter((list) => list.scopes.includes(scope)).flatMap((list) => list.commands.map((c) => c.title));
    expect(titles('personal')).toEqual(['ask', 'report an incident', 'my acknowledgements', 'help']);
    // A disclosure typed in a channel or group chat would be read by everyone in it.
    expect(titles('team')).toEqual(['ask', 'help']);
    expect(titles('groupChat')).toEqual(['ask', 'help']);
  });
});

describe('a broken manifest fails naming the bad field', () => {
  const cases: Array<[string, (m: Manifest) => void, string]> = [
    ['a bot id that is not a GUID', (m) => (m.bots[0].botId = 'esafety-bot'), 'bots[0].botId: must match pattern'],
    ['an unknown scope', (m) => m.bots[0].scopes.push('everywhere'), 'bots[0].scopes[3]: must be equal to one of the allowed values'],
    ['a short name over 30 characters', (m) => (m.name.short = 'E-safety and acceptable use policies'), 'name.short: must NOT have more than 30 characters'],
    ['a missing full description', (m) => delete m.description.full, 'description.full: is required'],
    ['a field the schema does not know', (m) => (m.bots[0].commandLists[0].commands[1].hint = 'x'), 'bots[0].commandLists[0].commands[1].hint: is not allowed here'],
    ['a privacy address that is not http(s)', (m) => (m.developer.privacyUrl = 'ftp://school.example.org'), 'developer.privacyUrl: must match pattern'],
    ['an accent colour that is not #RRGGBB', (m) => (m.accentColor = 'teal'), 'accentColor: must match pattern'],
    ['a valid domain with a scheme', (m) => (m.validDomains = ['https://bot.example.org/api']), 'validDomains[0]: "https://bot.example.org/api" must be a host name only'],
    ['a bot that accepts files', (m) => (m.bots[0].supportsFiles = true), 'bots[0].supportsFiles: must be false'],
    ['a placeholder left in', (m) => (m.developer.websiteUrl = 'https://{{HOST}}/'), 'developer.websiteUrl: placeholder not filled'],
  ];

  it.each(cases)('%s', (_name, change, expected) => {
    const problems = validateManifest(broken(change));
    expect(problems.join('\n')).toContain(expected);
  });

  it('an unknown manifest version is refused, naming manifestVersion', () => {
    expect(() => validateManifest(broken((m) => (m.manifestVersion = '0.9')))).toThrow(/manifestVersion: no official schema for version "0\.9"/);
  });

  it('a placeholder with no value is refused at its field', () => {
    const template = readTemplate() as Manifest;
    template.developer.name = '{{DEVELOPER_NAME}}';
    try {
      fillTemplate(template, values);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PackageError);
      expect((error as PackageError).problems).toEqual(['developer.name: no value for the placeholder {{DEVELOPER_NAME}}']);
    }
  });

  it('ids and addresses from the configuration are checked before filling, naming the setting', () => {
    const attempt = (appId: string, publicUrl: string) => {
      try {
        manifestValues({ appId, publicUrl, version: '1.0.0', out: 'unused' });
        return [];
      } catch (error) {
        return (error as PackageError).problems;
      }
    };
    expect(attempt('', 'https://bot.example.org')).toEqual([expect.stringMatching(/^MICROSOFT_APP_ID: required/)]);
    expect(attempt('not-a-guid', 'https://bot.example.org')).toEqual([expect.stringMatching(/^MICROSOFT_APP_ID: "not-a-guid" is not a GUID/)]);
    expect(attempt(APP_ID, 'http://localhost:3978')).toEqual([expect.stringMatching(/^PUBLIC_URL: must be an https address/)]);
    expect(attempt(APP_ID, 'https://localhost')).toEqual([expect.stringMatching(/^PUBLIC_URL: .* is this machine/)]);
    expect(manifestValues({ appId: APP_ID.toUpperCase(), publicUrl: 'https://bot.example.org:8443/', version: '1.0.0', out: 'unused' }).values).toMatchObject({
      MICROSOFT_APP_ID: APP_ID,
      BOT_DOMAIN: 'bot.example.org:8443',
      WEBSITE_URL: 'https://bot.example.org:8443',
    });
  });
});

describe('the icons', () => {
  const read = (name: string) => readFileSync(path.join(manifestDir, name));

  it('colour: 192x192, opaque; outline: 32x32, white on transparent', () => {
    const color = PNG.sync.read(read('color.png'));
    const outline = PNG.sync.read(read('outline.png'));
    expect([color.width, color.height]).toEqual([192, 192]);
    expect([outline.width, outline.height]).toEqual([32, 32]);
    expect(checkIcon('color', read('color.png'), 'color.png')).toEqual([]);
    expect(checkIcon('outline', read('outline.png'), 'outline.png')).toEqual([]);
    let transparent = 0;
    for (let i = 3; i < outline.data.length; i += 4) if (outline.data[i] === 0) transparent++;
    expect(transparent).toBeGreaterThan(32 * 32 * 0.4);
  });

  it('are small', () => {
    expect(read('color.png').length).toBeLessThan(16 * 1024);
    expect(read('outline.png').length).toBeLessThan(4 * 1024);
  });

  it('are the ones scripts/package-teams.icons.ts draws (regenerate them with it after a change)', () => {
    expect(Buffer.from(PNG.sync.read(read('color.png')).data).equals(Buffer.from(drawColorIcon().data))).toBe(true);
    expect(Buffer.from(PNG.sync.read(read('outline.png')).data).equals(Buffer.from(drawOutlineIcon().data))).toBe(true);
  });

  it('a wrong size, an opaque outline or a coloured outline pixel is refused, naming the icon', () => {
    const wrongSize = PNG.sync.write(new PNG({ width: 48, height: 48 }));
    expect(checkIcon('outline', wrongSize, 'outline.png')).toContain('icons.outline (outline.png): must be 32x32 pixels, is 48x48');
    const opaque = new PNG({ width: 32, height: 32 });
    opaque.data.fill(255);
    expect(checkIcon('outline', PNG.sync.write(opaque), 'outline.png')).toEqual(['icons.outline (outline.png): must have a transparent background (no pixel is transparent)']);
    const coloured = drawOutlineIcon();
    coloured.data.set([255, 0, 0, 255], (5 * 32 + 7) * 4);
    expect(checkIcon('outline', PNG.sync.write(coloured), 'outline.png')).toEqual(['icons.outline (outline.png): every visible pixel must be white; pixel (7, 5) is rgba(255, 0, 0, 255)']);
    expect(checkIcon('color', Buffer.from('not a png'), 'color.png')[0]).toMatch(/^icons\.color \(color\.png\): not a readable PNG/);
  });
});
