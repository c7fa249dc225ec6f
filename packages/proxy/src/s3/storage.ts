/**
 * What the S3 layer needs of the data path: the subset of ProxyBackend it calls. Written as a
 * type so that the dependency is one-way and visible (s3 -> backend).
 */
import type { ProxyBackend } from '../backend/index.js';

export type S3Storage = Pick<
  ProxyBackend,
  | 'putObject'
  | 'getObject'
  | 'headObject'
  | 'deleteObject'
  | 'postObject'
  | 'putContainer'
  | 'headContainer'
  | 'deleteContainer'
  | 'listContainer'
  | 'putAccount'
  | 'headAccount'
  | 'listAccount'
>;

export type { BackendResponse, ObjectRow, ContainerRow, SubdirRow } from '../backend/index.js';
