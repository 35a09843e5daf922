package settings

// Notification settings (issue 14), global only.
const (
	KeyNotifyInterval           = "notify.interval"
	KeyNotifyAgentDownAfter     = "notify.agent.down.after"
	KeyNotifyStorageFreePercent = "notify.storage.free.percent"
	KeyNotifyMaxAttempts        = "notify.max.attempts"
	KeyNotifyLinkBaseURL        = "notify.link.base.url"
)

var notifyDefinitions = []Definition{
	{
		Key: KeyNotifyInterval, Type: TypeInt, Default: "30", Min: num(1), Max: num(3600), Unit: UnitSeconds,
		Description: "Interval, in seconds, between two evaluations of the notification conditions (and rounds of the delivery sender)",
	},
	{
		Key: KeyNotifyAgentDownAfter, Type: TypeInt, Default: "300", Min: num(0), Unit: UnitSeconds,
		Description: "A remote agent disconnected for longer than this many seconds is notified (agent.down)",
	},
	{
		Key: KeyNotifyStorageFreePercent, Type: TypeFloat, Default: "10", Min: num(0), Max: num(100),
		Description: "A backup storage whose free space is below this percentage of its capacity is notified (storage.low)",
	},
	{
		Key: KeyNotifyMaxAttempts, Type: TypeInt, Default: "8", Min: num(1), Max: num(100),
		Description: "Attempts to deliver one notification (retried with exponential backoff from 30 s up to 1 h) before it is marked failed",
	},
	{
		Key: KeyNotifyLinkBaseURL, Type: TypeString, Default: "",
		Description: "Base URL of the knib API as receivers reach it (https://knib.example:8443); when set, notifications link to the validation screenshot",
	},
}
