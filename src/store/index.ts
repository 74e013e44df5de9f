/**
 * Chooses the store from settings. In production without COSMOS_KEY, Cosmos DB is reached with the
 * App Service's managed identity (@azure/identity), constructed only then, never in tests.
 */
import type { Settings } from '../config.ts';
import { createSqliteStore } from './sqlite/sqlite-store.ts';
import type { Store } from './store.ts';

export async function createStore(settings: Settings): Promise<Store> {
  const config = settings.store;
  if (config.kind === 'sqlite') return createSqliteStore({ file: config.file });
  // Loaded only when used: the Cosmos DB SDK takes a noticeable part of a second to import.
  const { createCosmosStore } = await import('./cosmos/cosmos-store.ts');
  if (config.key) return createCosmosStore({ endpoint: config.endpoint, key: config.key, database: config.database, container: config.container });
  const { DefaultAzureCredential } = await import('@azure/identity');
  return createCosmosStore({ endpoint: config.endpoint, database: config.database, container: config.container, credential: new DefaultAzureCredential() });
}

export type { Store } from './store.ts';
