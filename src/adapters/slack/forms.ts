/**
 * Cards with forms, kept so an "Open form" button can open them as a modal later (a button's value
 * holds 2,000 characters, a form does not fit). One `slack-form` record per form sent, in the
 * school's partition, readable only by the person it was sent to, in their own workspace.
 */
import { randomUUID } from 'node:crypto';
import type { Directory } from '../../bot/directory.ts';
import type { Card } from '../../bot/reply.ts';
import type { Store } from '../../store/store.ts';
import type { FormMetadata } from './block-kit.ts';

export const FORM_KIND = 'slack-form';

export interface StoredForm {
  card: Card;
  teamId: string;
  /** The only person who may open it. */
  userId: string;
  conversation?: FormMetadata['conversation'];
  createdAt: string;
}

export class SlackForms {
  constructor(private readonly store: Store, private readonly directory: Directory) {}

  /** Stores the card; undefined when the workspace belongs to no school (the card then has no form button). */
  async save(form: Omit<StoredForm, 'createdAt'>): Promise<string | undefined> {
    const school = await this.directory.schoolForTenant('slack', form.teamId);
    if (!school) return undefined;
    const id = `form-${randomUUID()}`;
    await this.store.create<StoredForm>({ kind: FORM_KIND, school, id }, { ...form, createdAt: new Date().toISOString() });
    return id;
  }

  /** The form, when it exists in this workspace's school and belongs to this user. */
  async load(teamId: string, userId: string, id: string): Promise<StoredForm | undefined> {
    const school = await this.directory.schoolForTenant('slack', teamId);
    if (!school) return undefined;
    const record = await this.store.get<StoredForm>({ kind: FORM_KIND, school, id });
    if (!record || record.data.teamId !== teamId || record.data.userId !== userId) return undefined;
    return record.data;
  }

  async remove(teamId: string, id: string): Promise<void> {
    const school = await this.directory.schoolForTenant('slack', teamId);
    if (school) await this.store.delete({ kind: FORM_KIND, school, id });
  }
}
