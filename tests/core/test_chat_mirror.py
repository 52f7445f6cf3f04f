async def test_a_photo_written_in_the_topic_goes_to_the_person_as_an_image(
    container: Any,
) -> None:
    world = await make_world()
    link, conversation = await _setup(world)
    await Conversation.filter(id=conversation.id).update(last_inbound_at=datetime.now(UTC))
    await ChatIdentity.create(platform=Platform.TELEGRAM, platform_user_id="42", user=world.editor)
    await ChatThread.create(
        workspace=world.workspace,
        conversation=conversation,
        platform="telegram",
        chat_id=link.chat_id,
        thread_id="101",
    )
    services = assemble_services(container)
    desk = ChatDesk(
        conversations=services.conversations,
        storage=services.storage,
        media_url=lambda asset: f"https://reelay.example/media/{asset.storage_key}",
        results=CommandResults(container.redis),
        clock=container.clock,
    )
    who = ChatUser(Platform.TELEGRAM, chat_id=link.chat_id, user_id="42", name="eda")

    async def photo() -> bytes:
        return image_bytes()

    with aioresponses() as graph:
        graph.post(re.compile(r".*/messages.*"), payload={"message_id": "m-1"}, repeat=True)
        reply = await desk.handle(
            who, "101", "7", "Here it is", IncomingFile("p.jpg", "image/jpeg", photo)
        )
    assert reply is not None and reply.text.startswith(("✓", "⏳"))
    messages = [
        a.payload["message"] for a in await OutboundAction.filter(target="9001").order_by("id")
    ]
    image = messages[0]["attachment"]["payload"]["url"]
    assert image.startswith("https://reelay.example/media/")
    assert messages[1] == {"text": "Here it is"}
