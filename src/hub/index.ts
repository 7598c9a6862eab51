// Model hub: pull Qwen models from Hugging Face and ModelScope into a verified, shared cache.
export { resolveModel } from './resolve.js';
export { pullModel, type PullOptions, type PullResult } from './pull.js';
export { listCached, removeCached, type CachedModel, type CachedSnapshot } from './catalog.js';
export { parseModelRef, looksLikeModelRef, type HubName, type ModelRef } from './ids.js';
export { cacheRoot, hfCacheRoot, modelscopeCacheRoot } from './cache.js';
export { streamProgress, SILENT, type PullProgress } from './progress.js';
