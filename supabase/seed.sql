-- Demo leads for a fresh database: one per form, one per quality. Plain inserts, so the
-- triggers score them, set their deadlines and write their events and timeline entries.
-- Times are relative to now: one lead is fresh, one is past its deadline unanswered, one was
-- answered in time. Run it once: a second run adds the same leads again.

-- A contact form, COLD (an email, a budget): arrived a few minutes ago.
with lead as (
  insert into public.conversations (form, name, email, message, budget, metadata, created_at)
  values (
    'contact_form',
    'Amira Haddad',
    'amira.haddad@example.com',
    'Hello, I would like to know more about renting a two-bedroom flat in Dubai Marina.',
    'AED 120,000 a year',
    '{"country": "AE", "utm_source": "google", "utm_campaign": "marina-rentals"}',
    now() - interval '5 minutes'
  )
  returning id, message, created_at
)
insert into public.chat_messages (conversation_id, sender_type, content, sent_at)
select id, 'customer', message, created_at from lead;

-- A property inquiry, HOT (phone, property, short timeline, cash): arrived 20 minutes ago and
-- not answered, so past its 15-minute deadline.
insert into public.conversations (
  form, name, email, phone, message, property_id, property_title, budget, timeline, financing,
  metadata, device_info, created_at
) values (
  'property_inquiry',
  'James Whitfield',
  'j.whitfield@example.com',
  '+447700900123',
  'Is the penthouse still available? I can view it this week.',
  'prop-palm-jumeirah-0042',
  'Penthouse, Palm Jumeirah, 4 bedrooms',
  'AED 12M',
  'ASAP',
  'cash',
  '{"country": "GB", "referrer": "https://www.truenester.com/properties"}',
  '{"browser": "Safari", "os": "iOS", "device": "mobile"}',
  now() - interval '20 minutes'
);

-- A chatbot conversation, WARM as the chatbot judged it, answered by an agent.
with lead as (
  insert into public.conversations (form, source, name, phone, session_id, timeline, quality, metadata, created_at)
  values (
    'chatbot',
    'chatbot',
    'Priya Nair',
    '+971501234567',
    'demo-session-0001',
    '3-6 months',
    'warm',
    '{"country": "AE"}',
    now() - interval '50 minutes'
  )
  returning id, created_at
)
insert into public.chat_messages (conversation_id, sender_type, sender_id, content, sent_at)
select lead.id, m.sender_type::public.sender_type, m.sender_id, m.content, lead.created_at + m.after
  from lead,
       (values
         (1, 'customer', null, 'Hi, I am looking for a villa in Arabian Ranches.', interval '0 minutes'),
         (2, 'bot', 'chatbot', 'Happy to help! What is your budget and when would you like to move?', interval '1 minute'),
         (3, 'customer', null, 'Around 4 million, in three to six months.', interval '2 minutes'),
         (4, 'agent', 'demo-agent', 'Hello Priya, this is Omar from TrueNester. I have three villas to show you.', interval '20 minutes')
       ) as m (seq, sender_type, sender_id, content, after)
 order by m.seq;

-- A follow-up for the chatbot lead, due tomorrow.
insert into public.follow_up_tasks (conversation_id, follow_up_date, sla_deadline, notes)
select id, now() + interval '1 day', now() + interval '1 day 2 hours', 'Send the three villa brochures and book viewings.'
  from public.conversations
 where session_id = 'demo-session-0001';
