-- A deployment's status changes in place (in progress, then success or
-- failure) and none of the columns that change is indexed: free space on
-- each page lets PostgreSQL make those updates heap-only (HOT), without a
-- new entry in every index of the table. New pages keep the space; old
-- ones gain it as they are rewritten.
ALTER TABLE deployments SET (fillfactor = 70);
