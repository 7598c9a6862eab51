// The library API: what `import ... from 'qwen-ts'` gives. The CLI and server are built on it.
export { QwenError } from './errors.js';
// models and backends
export { loadModel, openModelFiles, type LoadOptions } from './models/load.js';
export { LOAD_QUANT_TYPES, type LoadQuantType } from './models/weights.js';
export type { CausalLM, TraceHook } from './models/model.js';
export { KvCache, type BatchEntry } from './models/kv_cache.js';
export { parseHfConfig, configFromGguf, type QwenConfig } from './models/config.js';
export type { Backend, Weight } from './backend/backend.js';
export { createBackend, BACKENDS, type BackendName } from './backend/index.js';
export { ReferenceBackend } from './backend/reference.js';
export { WasmBackend } from './backend/wasm.js';
// generation and chat
export { generate, type GenerateOptions, type Step, type FinishReason, type Constraint } from './generate/generate.js';
export { Scheduler, type Engine, type SchedulerStats } from './generate/scheduler.js';
export { EngineClient, type EngineClientOptions } from './engine/client.js';
export { PrefixCache, DEFAULT_CACHE_BYTES, type PrefixCacheStats } from './generate/prefix_cache.js';
export { sample, logprobs, Rng, type SamplerParams } from './generate/sampler.js';
export { jsonConstraint, toolCallConstraint, constraintFromSpec, validateSchema, type ConstraintSpec } from './generate/constrain/index.js';
export {
  openChatModel,
  openChatModelThreaded,
  type LocalChatModel,
  type ThreadedChatModel,
  type EngineOptions,
  chat,
  complete,
  prepareChat,
  type ChatModel,
  type ChatRequest,
  type ChatEvent,
  type ChatResult,
} from './chat/engine.js';
export { QwenOutputParser, type OutputEvent, type ToolCall } from './chat/qwen_output.js';
export { createServer, type ServerOptions } from './server/app.js';
// embeddings and reranking
export { embed, embeddingIds, poolingOf, queryText, type EmbedModel, type EmbedInput, type EmbedOptions, type EmbedResult } from './embed/embed.js';
export { rerank, rerankPrompt, RERANK_INSTRUCTION, type RerankOptions, type RerankResult } from './embed/rerank.js';
export { readPooling, type Pooling, type VectorPooling, type PoolingInfo } from './embed/pooling.js';
export type { ForwardOutput } from './models/model.js';
// tokenizer, formats, hub
export * from './tokenizer/index.js';
export { openGguf, type GgufFile, type GgufKV, type GgufValue } from './formats/gguf.js';
export { writeGguf } from './formats/gguf_writer.js';
export { openGgufModel, writeGgufSplit } from './formats/gguf_split.js';
export { openSafetensors } from './formats/safetensors.js';
export { writeSafetensors, writeShardedSafetensors } from './formats/safetensors_writer.js';
export { dequantize, quantize } from './formats/quant/index.js';
export { resolveModel, pullModel, listCached, removeCached, type PullOptions } from './hub/index.js';
// LoRA fine-tuning
export { finetune, type FinetuneOptions, type FinetuneResult, type FinetuneEvent, type EpochRecord } from './train/finetune.js';
// LoRA adapters: read / write (PEFT, GGUF LoRA), apply per request (LoadOptions.lora, attachLora, BatchEntry.adapter), merge
export { LORA_TARGETS, loraScale, type LoraAdapter, type LoraModule, type LoraConfig } from './lora/adapter.js';
export { readPeftAdapter, writePeftAdapter } from './lora/peft.js';
export { readGgufLora, exportGgufLora } from './lora/gguf_lora.js';
export { readAdapter, resolveAdapter, attachLora, type LoraSpec, type AttachOptions } from './lora/load.js';
export { LoraSet } from './lora/apply.js';
export { mergedSource, type MergeOptions } from './lora/merge.js';
export { checkAdapter } from './lora/targets.js';
