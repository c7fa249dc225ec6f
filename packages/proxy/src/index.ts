export * from './backend/index.js';
export * from './s3/index.js';
