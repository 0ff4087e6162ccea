
export type Json = string | number | boolean | null | { [key: string]: Json | undefined } | Json[]

export type Database = {
  
  "public": {
          Tables: {
            "chat_messages": {
                  Row: {
                    "content": string,"conversation_id": string,"created_at": string,"id": string,"sender_id": string | null,"sender_type": Database["public"]['Enums']["sender_type"],"sent_at": string,"seq": number
                  }
                  ComputedFields: never
                  Insert: {
                    "content": string,"conversation_id": string,"created_at"?: string,"id"?: string,"sender_id"?: string | null,"sender_type": Database["public"]['Enums']["sender_type"],"sent_at"?: string,"seq"?: never
                  }
                  Update: {
                    "content"?: string,"conversation_id"?: string,"created_at"?: string,"id"?: string,"sender_id"?: string | null,"sender_type"?: Database["public"]['Enums']["sender_type"],"sent_at"?: string,"seq"?: never
                  }
                  Relationships: [
                    {
      foreignKeyName: "chat_messages_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "conversations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "chat_messages_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "sla_lead_outcomes"
      referencedColumns: ["conversation_id"]
    }
                  ]
                },"conversation_timeline": {
                  Row: {
                    "actor_id": string | null,"actor_type": Database["public"]['Enums']["actor_type"],"conversation_id": string,"created_at": string,"description": string | null,"event_type": Database["public"]['Enums']["timeline_event_type"],"id": string,"metadata": NonNullable<Json>,"title": string
                  }
                  ComputedFields: never
                  Insert: {
                    "actor_id"?: string | null,"actor_type"?: Database["public"]['Enums']["actor_type"],"conversation_id": string,"created_at"?: string,"description"?: string | null,"event_type": Database["public"]['Enums']["timeline_event_type"],"id"?: string,"metadata"?: NonNullable<Json>,"title": string
                  }
                  Update: {
                    "actor_id"?: string | null,"actor_type"?: Database["public"]['Enums']["actor_type"],"conversation_id"?: string,"created_at"?: string,"description"?: string | null,"event_type"?: Database["public"]['Enums']["timeline_event_type"],"id"?: string,"metadata"?: NonNullable<Json>,"title"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "conversation_timeline_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "conversations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "conversation_timeline_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "sla_lead_outcomes"
      referencedColumns: ["conversation_id"]
    }
                  ]
                },"conversations": {
                  Row: {
                    "assigned_to": string | null,"budget": string | null,"closed_at": string | null,"created_at": string,"device_info": NonNullable<Json>,"email": string | null,"financing": string | null,"first_response_at": string | null,"form": Database["public"]['Enums']["lead_form"],"id": string,"idempotency_key": string | null,"lead_score": number,"message": string | null,"metadata": NonNullable<Json>,"name": string | null,"person_id": string | null,"person_inquiries_24h": number,"person_inquiry": number,"phone": string | null,"phone_raw": string | null,"phone_valid": boolean | null,"property_id": string | null,"property_title": string | null,"quality": Database["public"]['Enums']["lead_quality"],"score_reasons": (string)[],"session_id": string | null,"sla_breached": boolean,"sla_breached_at": string | null,"sla_response_deadline": string,"sla_warning_at": string,"sla_warning_sent_at": string | null,"source": string,"status": Database["public"]['Enums']["conversation_status"],"timeline": string | null,"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "assigned_to"?: string | null,"budget"?: string | null,"closed_at"?: string | null,"created_at"?: string,"device_info"?: NonNullable<Json>,"email"?: string | null,"financing"?: string | null,"first_response_at"?: string | null,"form": Database["public"]['Enums']["lead_form"],"id"?: string,"idempotency_key"?: string | null,"lead_score": number,"message"?: string | null,"metadata"?: NonNullable<Json>,"name"?: string | null,"person_id"?: string | null,"person_inquiries_24h"?: number,"person_inquiry"?: number,"phone"?: string | null,"phone_raw"?: string | null,"phone_valid"?: boolean | null,"property_id"?: string | null,"property_title"?: string | null,"quality": Database["public"]['Enums']["lead_quality"],"score_reasons"?: (string)[],"session_id"?: string | null,"sla_breached"?: boolean,"sla_breached_at"?: string | null,"sla_response_deadline": string,"sla_warning_at": string,"sla_warning_sent_at"?: string | null,"source"?: string,"status"?: Database["public"]['Enums']["conversation_status"],"timeline"?: string | null,"updated_at"?: string
                  }
                  Update: {
                    "assigned_to"?: string | null,"budget"?: string | null,"closed_at"?: string | null,"created_at"?: string,"device_info"?: NonNullable<Json>,"email"?: string | null,"financing"?: string | null,"first_response_at"?: string | null,"form"?: Database["public"]['Enums']["lead_form"],"id"?: string,"idempotency_key"?: string | null,"lead_score"?: number,"message"?: string | null,"metadata"?: NonNullable<Json>,"name"?: string | null,"person_id"?: string | null,"person_inquiries_24h"?: number,"person_inquiry"?: number,"phone"?: string | null,"phone_raw"?: string | null,"phone_valid"?: boolean | null,"property_id"?: string | null,"property_title"?: string | null,"quality"?: Database["public"]['Enums']["lead_quality"],"score_reasons"?: (string)[],"session_id"?: string | null,"sla_breached"?: boolean,"sla_breached_at"?: string | null,"sla_response_deadline"?: string,"sla_warning_at"?: string,"sla_warning_sent_at"?: string | null,"source"?: string,"status"?: Database["public"]['Enums']["conversation_status"],"timeline"?: string | null,"updated_at"?: string
                  }
                  Relationships: [
                    
                  ]
                },"follow_up_tasks": {
                  Row: {
                    "assigned_to": string | null,"completed_at": string | null,"conversation_id": string,"created_at": string,"due_notified_at": string | null,"follow_up_date": string,"id": string,"notes": string | null,"overdue_at": string | null,"sla_breached": boolean,"sla_deadline": string | null,"status": Database["public"]['Enums']["follow_up_status"],"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "assigned_to"?: string | null,"completed_at"?: string | null,"conversation_id": string,"created_at"?: string,"due_notified_at"?: string | null,"follow_up_date": string,"id"?: string,"notes"?: string | null,"overdue_at"?: string | null,"sla_breached"?: boolean,"sla_deadline"?: string | null,"status"?: Database["public"]['Enums']["follow_up_status"],"updated_at"?: string
                  }
                  Update: {
                    "assigned_to"?: string | null,"completed_at"?: string | null,"conversation_id"?: string,"created_at"?: string,"due_notified_at"?: string | null,"follow_up_date"?: string,"id"?: string,"notes"?: string | null,"overdue_at"?: string | null,"sla_breached"?: boolean,"sla_deadline"?: string | null,"status"?: Database["public"]['Enums']["follow_up_status"],"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "follow_up_tasks_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "conversations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "follow_up_tasks_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "sla_lead_outcomes"
      referencedColumns: ["conversation_id"]
    }
                  ]
                },"lead_events": {
                  Row: {
                    "available_at": string,"conversation_id": string,"created_at": string,"deliveries_opened_at": string | null,"event_type": Database["public"]['Enums']["lead_event_type"],"follow_up_task_id": string | null,"id": string,"idempotency_key": string,"last_error": string | null,"lease_expires_at": string | null,"lease_owner": string | null,"payload": NonNullable<Json>,"processed": boolean,"processed_at": string | null,"retry_count": number
                  }
                  ComputedFields: never
                  Insert: {
                    "available_at"?: string,"conversation_id": string,"created_at"?: string,"deliveries_opened_at"?: string | null,"event_type": Database["public"]['Enums']["lead_event_type"],"follow_up_task_id"?: string | null,"id"?: string,"idempotency_key": string,"last_error"?: string | null,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"payload"?: NonNullable<Json>,"processed"?: boolean,"processed_at"?: string | null,"retry_count"?: number
                  }
                  Update: {
                    "available_at"?: string,"conversation_id"?: string,"created_at"?: string,"deliveries_opened_at"?: string | null,"event_type"?: Database["public"]['Enums']["lead_event_type"],"follow_up_task_id"?: string | null,"id"?: string,"idempotency_key"?: string,"last_error"?: string | null,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"payload"?: NonNullable<Json>,"processed"?: boolean,"processed_at"?: string | null,"retry_count"?: number
                  }
                  Relationships: [
                    {
      foreignKeyName: "lead_events_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "conversations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "lead_events_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "sla_lead_outcomes"
      referencedColumns: ["conversation_id"]
    },{
      foreignKeyName: "lead_events_follow_up_task_id_fkey"
      columns: ["follow_up_task_id"]
isOneToOne: false
      referencedRelation: "follow_up_tasks"
      referencedColumns: ["id"]
    }
                  ]
                },"leader_leases": {
                  Row: {
                    "acquired_at": string | null,"expires_at": string,"holder": string | null,"name": string,"renewed_at": string | null,"token": number
                  }
                  ComputedFields: never
                  Insert: {
                    "acquired_at"?: string | null,"expires_at"?: string,"holder"?: string | null,"name": string,"renewed_at"?: string | null,"token"?: number
                  }
                  Update: {
                    "acquired_at"?: string | null,"expires_at"?: string,"holder"?: string | null,"name"?: string,"renewed_at"?: string | null,"token"?: number
                  }
                  Relationships: [
                    
                  ]
                },"notification_logs": {
                  Row: {
                    "attempts": number,"channel": Database["public"]['Enums']["notification_channel"],"conversation_id": string,"created_at": string,"fallback_for": Database["public"]['Enums']["notification_channel"] | null,"id": string,"last_error": string | null,"lead_event_id": string,"lease_expires_at": string | null,"lease_owner": string | null,"next_attempt_at": string | null,"provider_response": string | null,"sent_at": string | null,"status": Database["public"]['Enums']["notification_status"],"updated_at": string
                  }
                  ComputedFields: never
                  Insert: {
                    "attempts"?: number,"channel": Database["public"]['Enums']["notification_channel"],"conversation_id": string,"created_at"?: string,"fallback_for"?: Database["public"]['Enums']["notification_channel"] | null,"id"?: string,"last_error"?: string | null,"lead_event_id": string,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"next_attempt_at"?: string | null,"provider_response"?: string | null,"sent_at"?: string | null,"status"?: Database["public"]['Enums']["notification_status"],"updated_at"?: string
                  }
                  Update: {
                    "attempts"?: number,"channel"?: Database["public"]['Enums']["notification_channel"],"conversation_id"?: string,"created_at"?: string,"fallback_for"?: Database["public"]['Enums']["notification_channel"] | null,"id"?: string,"last_error"?: string | null,"lead_event_id"?: string,"lease_expires_at"?: string | null,"lease_owner"?: string | null,"next_attempt_at"?: string | null,"provider_response"?: string | null,"sent_at"?: string | null,"status"?: Database["public"]['Enums']["notification_status"],"updated_at"?: string
                  }
                  Relationships: [
                    {
      foreignKeyName: "notification_logs_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "conversations"
      referencedColumns: ["id"]
    },{
      foreignKeyName: "notification_logs_conversation_id_fkey"
      columns: ["conversation_id"]
isOneToOne: false
      referencedRelation: "sla_lead_outcomes"
      referencedColumns: ["conversation_id"]
    },{
      foreignKeyName: "notification_logs_lead_event_id_fkey"
      columns: ["lead_event_id"]
isOneToOne: false
      referencedRelation: "lead_events"
      referencedColumns: ["id"]
    }
                  ]
                },"notification_routes": {
                  Row: {
                    "channel": Database["public"]['Enums']["notification_channel"],"event_type": Database["public"]['Enums']["lead_event_type"],"fallback": (Database["public"]['Enums']["notification_channel"])[]
                  }
                  ComputedFields: never
                  Insert: {
                    "channel": Database["public"]['Enums']["notification_channel"],"event_type": Database["public"]['Enums']["lead_event_type"],"fallback"?: (Database["public"]['Enums']["notification_channel"])[]
                  }
                  Update: {
                    "channel"?: Database["public"]['Enums']["notification_channel"],"event_type"?: Database["public"]['Enums']["lead_event_type"],"fallback"?: (Database["public"]['Enums']["notification_channel"])[]
                  }
                  Relationships: [
                    
                  ]
                },"sla_policies": {
                  Row: {
                    "quality": Database["public"]['Enums']["lead_quality"],"response_window": string,"updated_at": string,"warn_before": string
                  }
                  ComputedFields: never
                  Insert: {
                    "quality": Database["public"]['Enums']["lead_quality"],"response_window": string,"updated_at"?: string,"warn_before": string
                  }
                  Update: {
                    "quality"?: Database["public"]['Enums']["lead_quality"],"response_window"?: string,"updated_at"?: string,"warn_before"?: string
                  }
                  Relationships: [
                    
                  ]
                }
          }
          Views: {
            "sla_daily_summary": {
                  Row: {
                    "answered": number | null,"answered_in_time": number | null,"breached": number | null,"day": string | null,"leads": number | null,"median_first_response_seconds": number | null,"p90_first_response_seconds": number | null,"quality": Database["public"]['Enums']["lead_quality"],"source": string
                  }
                  ComputedFields: never
                  Relationships: [
                    
                  ]
                },"sla_lead_outcomes": {
                  Row: {
                    "answered_in_time": boolean | null,"breached": boolean | null,"conversation_id": string,"created_at": string,"day": string | null,"first_response_at": string | null,"form": Database["public"]['Enums']["lead_form"],"quality": Database["public"]['Enums']["lead_quality"],"sla_response_deadline": string,"source": string,"status": Database["public"]['Enums']["conversation_status"],"time_to_first_response": string | null
                  }
                  ComputedFields: never
                  Insert: {
                           "answered_in_time"?: never,"breached"?: never,"conversation_id"?: string | null,"created_at"?: string | null,"day"?: never,"first_response_at"?: string | null,"form"?: Database["public"]['Enums']["lead_form"] | null,"quality"?: Database["public"]['Enums']["lead_quality"] | null,"sla_response_deadline"?: string | null,"source"?: string | null,"status"?: Database["public"]['Enums']["conversation_status"] | null,"time_to_first_response"?: never
                         }
                        Update: {
                           "answered_in_time"?: never,"breached"?: never,"conversation_id"?: string | null,"created_at"?: string | null,"day"?: never,"first_response_at"?: string | null,"form"?: Database["public"]['Enums']["lead_form"] | null,"quality"?: Database["public"]['Enums']["lead_quality"] | null,"sla_response_deadline"?: string | null,"source"?: string | null,"status"?: Database["public"]['Enums']["conversation_status"] | null,"time_to_first_response"?: never
                         }
                        Relationships: [
                    
                  ]
                }
          }
          Functions: {
            "admin_actor":
{ Args: Record<PropertyKey, never>; Returns: Record<string, unknown>
                           },
"admin_actor_metadata":
{ Args: Record<PropertyKey, never>; Returns: Json
                           },
"admin_add_note":
{ Args: { "p_body": string,"p_conversation_id": string }; Returns: string
                           },
"admin_assign":
{ Args: { "p_assignee": string,"p_conversation_id": string }; Returns: boolean
                           },
"admin_cancel_follow_up":
{ Args: { "p_task_id": string }; Returns: boolean
                           },
"admin_check":
{ Args: Record<PropertyKey, never>; Returns: undefined
                           },
"admin_close_follow_up":
{ Args: { "p_status": Database["public"]['Enums']["follow_up_status"],"p_task_id": string }; Returns: boolean
                           },
"admin_complete_follow_up":
{ Args: { "p_task_id": string }; Returns: boolean
                           },
"admin_lead_exists":
{ Args: { "p_conversation_id": string }; Returns: undefined
                           },
"admin_mark_contacted":
{ Args: { "p_conversation_id": string }; Returns: boolean
                           },
"admin_replay_event":
{ Args: { "p_event_id": string }; Returns: number
                           },
"admin_replay_failed":
{ Args: { "p_channel"?: Database["public"]['Enums']["notification_channel"] }; Returns: number
                           },
"admin_reply":
{ Args: { "p_body": string,"p_conversation_id": string }; Returns: string
                           },
"admin_schedule_follow_up":
{ Args: { "p_assignee"?: string,"p_conversation_id": string,"p_follow_up_date": string,"p_notes"?: string,"p_sla_deadline"?: string }; Returns: string
                           },
"admin_set_quality":
{ Args: { "p_conversation_id": string,"p_quality": Database["public"]['Enums']["lead_quality"] }; Returns: boolean
                           },
"admin_set_status":
{ Args: { "p_conversation_id": string,"p_status": Database["public"]['Enums']["conversation_status"] }; Returns: boolean
                           },
"announce_replica":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_now"?: string,"p_replica": string }; Returns: string
                           },
"api_client_address":
{ Args: Record<PropertyKey, never>; Returns: string
                           },
"channel_title":
{ Args: { "p_channel": Database["public"]['Enums']["notification_channel"] }; Returns: string
                           },
"check_api_rate_limit":
{ Args: { "client": string,"now": string }; Returns: undefined
                           },
"claim_console_events":
{ Args: { "p_limit": number,"p_now"?: string }; Returns: Database["public"]['CompositeTypes']["dispatch_alert"][]
                          SetofOptions: {
        from: "*"
        to: "dispatch_alert"
        isOneToOne: false
        isSetofReturn: true
      } },
"claim_deliveries":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_lease": string,"p_limits": (number)[],"p_now"?: string,"p_worker": string }; Returns: Database["public"]['CompositeTypes']["dispatch_alert"][]
                          SetofOptions: {
        from: "*"
        to: "dispatch_alert"
        isOneToOne: false
        isSetofReturn: true
      } },
"duration_text":
{ Args: { "d": string }; Returns: string
                           },
"event_channels":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_event_type": Database["public"]['Enums']["lead_event_type"] }; Returns: Database["public"]['Enums']["notification_channel"][]
                           },
"fail_unserved_deliveries":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_limit": number,"p_now"?: string }; Returns: number
                           },
"follow_up_tick":
{ Args: { "p_limit"?: number,"p_now": string }; Returns: {
              "due": number,"overdue": number
            }[]
                           },
"intake_claim_holder":
{ Args: { "claim": string,"expires_at": string,"fingerprint": string,"lead_id": string }; Returns: Record<string, unknown>
                           },
"intake_limit":
{ Args: { "what": string }; Returns: number
                           },
"lead_event_key":
{ Args: { "event_type": Database["public"]['Enums']["lead_event_type"],"subject": string }; Returns: string
                           },
"lead_is_open":
{ Args: { "status": Database["public"]['Enums']["conversation_status"] }; Returns: boolean
                           },
"lead_person":
{ Args: { "email": string,"new_person": string,"phone": string }; Returns: string
                           },
"lead_text_limit":
{ Args: { "col": string }; Returns: number
                           },
"leader_lease_acquire":
{ Args: { "p_holder": string,"p_name": string,"p_ttl": string }; Returns: {
              "expires_at": string,"held": boolean,"holder": string,"token": number
            }[]
                           },
"leader_lease_fence":
{ Args: { "p_holder": string,"p_name": string,"p_token": number }; Returns: boolean
                           },
"leader_lease_release":
{ Args: { "p_holder": string,"p_name": string,"p_token": number }; Returns: boolean
                           },
"live_channels":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_now": string }; Returns: (Database["public"]['Enums']["notification_channel"])[]
                           },
"live_replicas":
{ Args: { "p_limit": number,"p_now": string }; Returns: {
              "channels": (Database["public"]['Enums']["notification_channel"])[],"replica": string,"seen_at": string
            }[]
                           },
"open_lead_events":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_limit": number,"p_now"?: string }; Returns: number
                           },
"ordinal":
{ Args: { "n": number }; Returns: string
                           },
"parse_phone":
{ Args: { "raw": string,"region": string }; Returns: Record<string, unknown>
                           },
"prune_intake":
{ Args: { "max_rows"?: number,"now": string }; Returns: number
                           },
"record_deliveries":
{ Args: { "p_channels": (Database["public"]['Enums']["notification_channel"])[],"p_now"?: string,"p_outcomes": Json }; Returns: number
                           },
"record_first_response":
{ Args: { "actor": Database["public"]['Enums']["actor_type"],"actor_id": string,"lead": Omit<Database["public"]['Tables']["conversations"]['Row'], Database["public"]['Tables']["conversations"]['ComputedFields']>,"via": string }; Returns: undefined
                           },
"record_lead_event":
{ Args: { "available_at"?: string,"conversation_id": string,"entry_actor": Database["public"]['Enums']["actor_type"],"entry_actor_id": string,"entry_at"?: string,"entry_description": string,"entry_metadata": Json,"entry_title": string,"entry_type": Database["public"]['Enums']["timeline_event_type"],"event_type": Database["public"]['Enums']["lead_event_type"],"follow_up_task_id"?: string,"once_for": string,"payload": Json }; Returns: string
                           },
"release_deliveries":
{ Args: { "p_attempts": (number)[],"p_log_ids": (string)[],"p_worker": string }; Returns: number
                           },
"renew_delivery_leases":
{ Args: { "p_attempts": (number)[],"p_lease": string,"p_log_ids": (string)[],"p_now"?: string,"p_worker": string }; Returns: number
                           },
"replay_lead_event":
{ Args: { "p_event_id": string,"p_now"?: string }; Returns: number
                           },
"replica_window":
{ Args: Record<PropertyKey, never>; Returns: string
                           },
"returning_note":
{ Args: { "person_inquiries_24h": number,"person_inquiry": number }; Returns: string
                           },
"score_lead":
{ Args: { "budget": string,"financing": string,"person_inquiries_24h"?: number,"person_inquiry"?: number,"phone": string,"phone_raw": string,"property_id": string,"stated_quality"?: Database["public"]['Enums']["lead_quality"],"timeline": string }; Returns: Record<string, unknown>
                           },
"sla_alerts":
{ Args: { "p_limit"?: number,"p_now": string }; Returns: {
              "assigned_to": string,"breached": boolean,"conversation_id": string,"created_at": string,"email": string,"form": Database["public"]['Enums']["lead_form"],"name": string,"phone": string,"quality": Database["public"]['Enums']["lead_quality"],"seconds_left": number,"sla_breached_at": string,"sla_response_deadline": string,"sla_warning_at": string,"sla_warning_sent_at": string,"source": string,"status": Database["public"]['Enums']["conversation_status"]
            }[]
                           },
"sla_summary":
{ Args: { "p_from": string,"p_to": string }; Returns: {
              "answered": number,"answered_in_time": number,"breached": number,"leads": number,"median_first_response_seconds": number,"p90_first_response_seconds": number,"quality": Database["public"]['Enums']["lead_quality"],"source": string
            }[]
                           },
"sla_tick":
{ Args: { "p_limit"?: number,"p_now": string }; Returns: {
              "breaches": number,"warnings": number
            }[]
                           },
"sla_times":
{ Args: { "arrived_at": string,"lead_quality": Database["public"]['Enums']["lead_quality"] }; Returns: Record<string, unknown>
                           },
"strip_national_prefix":
{ Args: { "meta": unknown,"number": string }; Returns: string
                           },
"submit_lead":
{ Args: { "payload": Json }; Returns: Json
                           },
"unserved_grace":
{ Args: Record<PropertyKey, never>; Returns: string
                           }
          }
          Enums: {
            "actor_type": "system"|"agent"|"customer"|"bot","conversation_status": "new"|"contacted"|"qualified"|"converted"|"closed"|"spam","follow_up_status": "scheduled"|"completed"|"overdue"|"cancelled","lead_event_type": "lead.created"|"lead.updated"|"lead.status_changed"|"lead.responded"|"sla.warning"|"sla.breached"|"followup.due"|"followup.overdue"|"notification.sent"|"notification.failed","lead_form": "contact_form"|"property_inquiry"|"chatbot","lead_quality": "hot"|"warm"|"cold","notification_channel": "slack"|"email"|"telegram"|"whatsapp"|"sms"|"crm","notification_status": "pending"|"sent"|"delivered"|"failed","sender_type": "customer"|"bot"|"agent"|"system","timeline_event_type": "created"|"status_changed"|"quality_changed"|"first_response"|"message"|"notification_sent"|"notification_failed"|"sla_warning"|"sla_breached"|"followup_due"|"followup_overdue"|"note"|"assigned"|"followup_scheduled"|"followup_completed"|"followup_cancelled"
          }
          CompositeTypes: {
            "dispatch_alert": {
                        "log_id": string | null,"lead_event_id": string | null,"channel": Database["public"]['Enums']["notification_channel"] | null,"channels": (Database["public"]['Enums']["notification_channel"])[] | null,"attempt": number | null,"repeat": boolean | null,"event_type": Database["public"]['Enums']["lead_event_type"] | null,"conversation_id": string | null,"form": Database["public"]['Enums']["lead_form"] | null,"source": string | null,"name": string | null,"email": string | null,"phone": string | null,"property_id": string | null,"property_title": string | null,"quality": Database["public"]['Enums']["lead_quality"] | null,"score_reasons": (string)[] | null,"sla_response_deadline": string | null,"follow_up_date": string | null
                      }
          }
        }
}

type DatabaseWithoutInternals = Omit<Database, '__InternalSupabase'>

type DefaultSchema = DatabaseWithoutInternals[Extract<keyof Database, "public">]

export type Tables<
  DefaultSchemaTableNameOrOptions extends
    | keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
        DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? (DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"] &
      DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Views"])[TableName] extends {
      Row: infer R
    }
    ? R
    : never
  : DefaultSchemaTableNameOrOptions extends keyof (DefaultSchema["Tables"] & DefaultSchema["Views"])
  ? (DefaultSchema["Tables"] & DefaultSchema["Views"])[DefaultSchemaTableNameOrOptions] extends {
      Row: infer R
    }
    ? R
    : never
  : never

export type TablesInsert<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Insert: infer I
    }
    ? I
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Insert: infer I
    }
    ? I
    : never
  : never

export type TablesUpdate<
  DefaultSchemaTableNameOrOptions extends
    | keyof DefaultSchema["Tables"]
    | { schema: keyof DatabaseWithoutInternals },
  TableName extends DefaultSchemaTableNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"]
    : never = never
> = DefaultSchemaTableNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaTableNameOrOptions["schema"]]["Tables"][TableName] extends {
      Update: infer U
    }
    ? U
    : never
  : DefaultSchemaTableNameOrOptions extends keyof DefaultSchema["Tables"]
  ? DefaultSchema["Tables"][DefaultSchemaTableNameOrOptions] extends {
      Update: infer U
    }
    ? U
    : never
  : never

export type Enums<
  DefaultSchemaEnumNameOrOptions extends
    | keyof DefaultSchema["Enums"]
    | { schema: keyof DatabaseWithoutInternals },
  EnumName extends DefaultSchemaEnumNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"]
    : never = never
> = DefaultSchemaEnumNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[DefaultSchemaEnumNameOrOptions["schema"]]["Enums"][EnumName]
  : DefaultSchemaEnumNameOrOptions extends keyof DefaultSchema["Enums"]
  ? DefaultSchema["Enums"][DefaultSchemaEnumNameOrOptions]
  : never

export type CompositeTypes<
  PublicCompositeTypeNameOrOptions extends
    | keyof DefaultSchema["CompositeTypes"]
    | { schema: keyof DatabaseWithoutInternals },
  CompositeTypeName extends PublicCompositeTypeNameOrOptions extends {
    schema: keyof DatabaseWithoutInternals
  }
    ? keyof DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"]
    : never = never
> = PublicCompositeTypeNameOrOptions extends { schema: keyof DatabaseWithoutInternals }
  ? DatabaseWithoutInternals[PublicCompositeTypeNameOrOptions["schema"]]["CompositeTypes"][CompositeTypeName]
  : PublicCompositeTypeNameOrOptions extends keyof DefaultSchema["CompositeTypes"]
  ? DefaultSchema["CompositeTypes"][PublicCompositeTypeNameOrOptions]
  : never

export const Constants = {
  "public": {
          Enums: {
            "actor_type": ["system", "agent", "customer", "bot"],"conversation_status": ["new", "contacted", "qualified", "converted", "closed", "spam"],"follow_up_status": ["scheduled", "completed", "overdue", "cancelled"],"lead_event_type": ["lead.created", "lead.updated", "lead.status_changed", "lead.responded", "sla.warning", "sla.breached", "followup.due", "followup.overdue", "notification.sent", "notification.failed"],"lead_form": ["contact_form", "property_inquiry", "chatbot"],"lead_quality": ["hot", "warm", "cold"],"notification_channel": ["slack", "email", "telegram", "whatsapp", "sms", "crm"],"notification_status": ["pending", "sent", "delivered", "failed"],"sender_type": ["customer", "bot", "agent", "system"],"timeline_event_type": ["created", "status_changed", "quality_changed", "first_response", "message", "notification_sent", "notification_failed", "sla_warning", "sla_breached", "followup_due", "followup_overdue", "note", "assigned", "followup_scheduled", "followup_completed", "followup_cancelled"]
          }
        }
} as const
