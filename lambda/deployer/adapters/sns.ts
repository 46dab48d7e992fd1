/**
 * Notifier over SNS Publish. SNS refuses a Subject that is over 100 characters, not ASCII, or has
 * line breaks, and a message over 256 KB; rather than lose the outcome, both are cut to fit, and
 * a cut says so.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import type { Notifier } from '../../../core/types';
import { AWS_CLIENT_DEFAULTS, awsFailure } from '../../../core/retry';

/** The SNS client the deployer uses (SDK retries off: retry.ts retries). */
export function newSnsClient(region: string): SNSClient {
  return new SNSClient({ region, ...AWS_CLIENT_DEFAULTS });
}

const MAX_SUBJECT_CHARS = 100;
/** SNS's limit is 262144 bytes; the rest is room for the note about the cut. */
const MAX_MESSAGE_BYTES = 262144 - 256;

/** A Subject SNS accepts: printable ASCII on one line, at most 100 characters. */
export function snsSubject(subject: string): string {
  const printable = subject
    // "é" becomes "e" and a combining accent, which is dropped; what has no ASCII form becomes "?".
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim();
  if (printable.length <= MAX_SUBJECT_CHARS) return printable === '' ? '(no subject)' : printable;
  return `${printable.slice(0, MAX_SUBJECT_CHARS - 3)}...`;
}

/** A message under SNS's size limit; a cut one ends by saying it was cut. */
export function snsMessage(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= MAX_MESSAGE_BYTES) return message;
  // Cutting bytes may split a character: decoding drops the broken tail as U+FFFD, removed here.
  const kept = bytes
    .subarray(0, MAX_MESSAGE_BYTES)
    .toString('utf8')
    .replace(/\uFFFD+$/, '');
  return `${kept}\n\n[cut: the message was ${bytes.length} bytes; SNS takes at most 262144. The full outcome is in the deployer's log.]`;
}

/** Builds the notifier for one topic; `client` is called once, on first use. */
export function createNotifier(options: { client: () => SNSClient; topicArn: string }): Notifier {
  let sns: SNSClient | undefined;
  return {
    async publish(subject, message) {
      sns ??= options.client();
      try {
        await sns.send(
          new PublishCommand({
            TopicArn: options.topicArn,
            Subject: snsSubject(subject),
            Message: snsMessage(message),
          }),
        );
      } catch (error) {
        throw awsFailure(
          `SNS Publish to ${options.topicArn}`,
          error,
          `The deployer's role needs sns:Publish on ${options.topicArn} (and kms:GenerateDataKey/Decrypt on its key, if encrypted).`,
        );
      }
    },
  };
}
