-- mailboxes: users without the password column, for listing and auditing. mailadmin
-- reads this view; it never sees a hash.
-- depends: 0007_create_aliases

CREATE VIEW public.mailboxes AS
SELECT email, domain, realname, maildir, quota_bytes, active, created, modified
  FROM public.users;
