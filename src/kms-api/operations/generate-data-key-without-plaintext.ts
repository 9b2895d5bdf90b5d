import type { KmsContext } from '../context';
import { dataKeyInput, generateDataKeyFor } from './generate-data-key';
import { kmsOperation } from './operation';

async function generateDataKeyWithoutPlaintext(ctx: KmsContext, request: ReturnType<typeof dataKeyInput>) {
  return (await generateDataKeyFor(ctx, request, 'kms:GenerateDataKeyWithoutPlaintext')).result;
}

export const generateDataKeyWithoutPlaintextOperation = kmsOperation({
  name: 'GenerateDataKeyWithoutPlaintext',
  actions: ['kms:GenerateDataKeyWithoutPlaintext'],
  input: dataKeyInput,
  handle: generateDataKeyWithoutPlaintext,
});
