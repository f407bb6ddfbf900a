package activitypub

// Context IRIs we write in @context.
const (
	ActivityStreamsContext = "https://www.w3.org/ns/activitystreams"
	SecurityContext        = "https://w3id.org/security/v1"
	DataIntegrityContext   = "https://w3id.org/security/data-integrity/v1"
	ForgeFedContext        = "https://forgefed.org/ns"
)

// AS2 core type names used by Fedforge (the vocabulary has more; any name decodes).
const (
	TypeNote                  = "Note"
	TypeArticle               = "Article"
	TypePage                  = "Page"
	TypeImage                 = "Image"
	TypeDocument              = "Document"
	TypeTombstone             = "Tombstone"
	TypeCollection            = "Collection"
	TypeOrderedCollection     = "OrderedCollection"
	TypeCollectionPage        = "CollectionPage"
	TypeOrderedCollectionPage = "OrderedCollectionPage"
	TypeLink                  = "Link"
	TypeMention               = "Mention"
	TypeHashtag               = "Hashtag" // Mastodon extension (as:Hashtag)
	TypePropertyValue         = "PropertyValue"
	TypeMultikey              = "Multikey"

	TypePerson       = "Person"
	TypeService      = "Service"
	TypeApplication  = "Application"
	TypeGroup        = "Group"
	TypeOrganization = "Organization"

	TypeCreate   = "Create"
	TypeUpdate   = "Update"
	TypeDelete   = "Delete"
	TypeFollow   = "Follow"
	TypeAccept   = "Accept"
	TypeReject   = "Reject"
	TypeUndo     = "Undo"
	TypeAnnounce = "Announce"
	TypeLike     = "Like"
	TypeMove     = "Move"
	TypeAdd      = "Add"
	TypeRemove   = "Remove"
	TypeBlock    = "Block"
	TypeFlag     = "Flag"
	TypeOffer    = "Offer"
	TypeInvite   = "Invite"
	TypeJoin     = "Join"
	TypeLeave    = "Leave"
)

// ForgeFed type names (https://forgefed.org/vocabulary).
const (
	TypeRepository    = "Repository"
	TypePush          = "Push"
	TypeCommit        = "Commit"
	TypeBranch        = "Branch"
	TypeTicket        = "Ticket"
	TypePatch         = "Patch"
	TypePatchTracker  = "PatchTracker"
	TypeTicketTracker = "TicketTracker"
	TypeProject       = "Project"
	TypeTeam          = "Team"
	TypeResolve       = "Resolve"
	TypeRole          = "Role"
	TypeGrant         = "Grant"
	TypeRevoke        = "Revoke"
)

// ForgeFed holds the ForgeFed vocabulary properties; it is embedded in Object so that
// a Repository actor, a Push or a Ticket is one document like any other.
type ForgeFed struct {
	// Repository / TicketTracker / Project / Team.
	Team             Ref  `json:"team,omitzero"`
	Forks            Ref  `json:"forks,omitzero"`
	ForkedFrom       Ref  `json:"forkedFrom,omitzero"`
	TicketsTrackedBy Ref  `json:"ticketsTrackedBy,omitzero"`
	TracksTicketsFor Refs `json:"tracksTicketsFor,omitempty"`
	SendPatchesTo    Ref  `json:"sendPatchesTo,omitzero"`
	CloneURI         Refs `json:"cloneUri,omitempty"`
	PushURI          Refs `json:"pushUri,omitempty"`

	// Push / Commit / Branch.
	HashBefore    string   `json:"hashBefore,omitempty"`
	HashAfter     string   `json:"hashAfter,omitempty"`
	Hash          string   `json:"hash,omitempty"`
	Ref           string   `json:"ref,omitempty"`
	CommittedBy   Ref      `json:"committedBy,omitzero"`
	Committed     Time     `json:"committed,omitzero"`
	Created       Time     `json:"created,omitzero"`
	Description   *Content `json:"description,omitempty"`
	FilesAdded    []string `json:"filesAdded,omitempty"`
	FilesModified []string `json:"filesModified,omitempty"`
	FilesRemoved  []string `json:"filesRemoved,omitempty"`

	// Ticket / Patch / Resolve.
	IsResolved *bool `json:"isResolved,omitempty"`
	ResolvedBy Ref   `json:"resolvedBy,omitzero"`
	Resolved   Time  `json:"resolved,omitzero"`
	DependsOn  Refs  `json:"dependsOn,omitempty"`
}
