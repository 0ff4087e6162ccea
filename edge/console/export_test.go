package console

// UnansweredOpenLead is the SQL the leads list filters unanswered open leads by.
const UnansweredOpenLead = unansweredOpenLead
