// The tool definitions the Qwen3.5 serve tests send (a bounded string, an integer range, a boolean, an enum).
export const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_weather',
    description: 'Weather forecast',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 16 }, days: { type: 'integer', minimum: 1, maximum: 7 }, metric: { type: 'boolean' } },
      required: ['city', 'days'],
    },
  },
};
export const TIME = { type: 'function' as const, function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } } };
