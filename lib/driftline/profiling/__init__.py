"""Column profiles shared by training, scoring and monitoring: reference bins (`bins`), the membership filter
of high-cardinality categories (`membership`), the profile data types (`types`), the public entry points
`profile`, `profile_by`, `profile_rows` with the sketch aggregation and the row → profile step (`profile`), the
one pass over the data on the JVM or Arrow fold (`fold`), the Arrow + numpy fold's accumulation and the row
layout both folds share (`accumulate`), and stored reference profiles read back (`stored`)."""
