"""What training and evaluation both sit on: the degradations that turn HQ faces into LQ faces
(`degrade`), folders of face images (`folders`) and the held-out splits (`split`)."""
